"""The controls of any dataset (dcatkit.data.controls) and a sweep run beside them
(``sweep.control_studies``, ``python -m dcatkit sweep --controls``).

Negative control: the target's inputs shuffled within each part, so what the target sees
says nothing of the label; positive control: a copy of the target's own sensor, trained on
every label, teaches a target that keeps few labels."""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from dcatkit.data import from_arrays, load
from dcatkit.data.controls import break_pairing, default_labels, teacher_name, with_teacher
from dcatkit.data.dataset import hide_labels, training_set
from dcatkit.experiment import train_transfer, train_unimodal
from dcatkit.metrics import classification_metrics
from dcatkit.sweep import STUDY_METRIC, control_studies, run_studies, run_transfer_sweep
from helpers import tiny_splits

SMALL = {"frame_size": 16, "n_frames": 4}


def _rows(a):
    """The rows of an array as a sorted list of bytes: its multiset of samples."""
    a = np.asarray(a)
    return sorted(a[i].tobytes() for i in range(len(a)))


def _parts(sp):
    return {"train": sp.train, "val": sp.val, "test": sp.test, "unlabeled": sp.unlabeled}


def test_break_pairing_shuffles_the_target_within_each_part_and_nothing_else():
    sp = hide_labels(tiny_splits(96, modalities=("imu", "video")), 20, seed=0)
    out = break_pairing(sp, "imu", seed=3)
    for name, before in _parts(sp).items():
        after = _parts(out)[name]
        assert len(after) == len(before), name
        assert _rows(after.arrays["imu"]) == _rows(before.arrays["imu"]), name     # the part's own inputs
        assert not np.array_equal(after.arrays["imu"], before.arrays["imu"]), name  # moved
        assert np.array_equal(after.arrays["video"], before.arrays["video"]), name  # the source's: in place
        assert np.array_equal(after.labels, before.labels) and after.ids == before.ids, name
        assert np.array_equal(after.subjects, before.subjects) and after.groups == before.groups, name
        assert after.kinds == before.kinds and after.normalization == before.normalization, name
    # where each shuffled input came from: a permutation of the part, not the identity
    src = {before.arrays["imu"][i].tobytes(): i for i in range(len(sp.test))
           for before in [sp.test]}
    perm = [src[out.test.arrays["imu"][i].tobytes()] for i in range(len(sp.test))]
    assert sorted(perm) == list(range(len(sp.test))) and perm != list(range(len(sp.test)))
    # nor the stream a splitter or simulator seeded with the same seed draws (PERMUTATION_TAG)
    where = {sp.train.arrays["imu"][i].tobytes(): i for i in range(len(sp.train))}
    moved = [where[out.train.arrays["imu"][i].tobytes()] for i in range(len(sp.train))]
    assert moved != np.random.default_rng(3).permutation(len(sp.train)).tolist()
    again, other = break_pairing(sp, "imu", seed=3), break_pairing(sp, "imu", seed=4)
    assert np.array_equal(again.test.arrays["imu"], out.test.arrays["imu"])
    assert not np.array_equal(other.test.arrays["imu"], out.test.arrays["imu"])
    assert out.report["control"]["kind"] == "negative" and out.unlabeled is not None
    with pytest.raises(ValueError, match="no modality 'audio'"):
        break_pairing(sp, "audio")


def test_break_pairing_keeps_a_memory_mapped_target_on_disk(tmp_path):
    """The real loaders' video and audio are memory-mapped caches (``LazyRows`` over one
    ``np.memmap``, or a raw ``np.memmap``); the negative control permutes their rows lazily
    instead of reading the whole target into memory in every run, and the rows it gives are
    exactly the part's permutation (the seed's stream, ``PERMUTATION_TAG``), as in memory."""
    from dcatkit.data.controls import PERMUTATION_TAG
    from dcatkit.data.dataset import ConcatRows, PairedDataset, Splits
    from dcatkit.data.splits import LazyRows

    sp = hide_labels(tiny_splits(96, modalities=("imu", "video")), 20, seed=0)
    parts = _parts(sp)
    whole = np.concatenate([p.arrays["video"] for p in parts.values()])
    np.save(tmp_path / "video.npy", whole)
    base = np.load(tmp_path / "video.npy", mmap_mode="r")            # one cache, as splits.make_splits reads it
    starts = np.cumsum([0] + [len(p) for p in parts.values()])
    lazy, raw = {}, {}
    for k, (name, ds) in enumerate(parts.items()):
        np.save(tmp_path / f"{name}.npy", ds.arrays["video"])
        for into, video in ((lazy, LazyRows(base, np.arange(starts[k], starts[k + 1]))),
                            (raw, np.load(tmp_path / f"{name}.npy", mmap_mode="r"))):
            into[name] = PairedDataset({**ds.arrays, "video": video}, ds.labels, ds.classes, ds.subjects, ds.ids,
                                       ds.sample_rates, ds.groups, kinds=ds.kinds, normalization=ds.normalization)
    in_memory = break_pairing(sp, "video", seed=5)
    for backed in (lazy, raw):
        out = break_pairing(Splits(backed["train"], backed["val"], backed["test"], sp.report,
                                   unlabeled=backed["unlabeled"]), "video", seed=5)
        for name, before in backed.items():
            got = _parts(out)[name].arrays["video"]
            on_disk = before.arrays["video"].base if backed is lazy else before.arrays["video"]
            assert isinstance(got, LazyRows) and got.base is on_disk, (name, type(got))   # not read into memory
            assert isinstance(got.base, np.memmap) and got.shape == before.arrays["video"].shape, name
            assert np.array_equal(np.asarray(got), _parts(in_memory)[name].arrays["video"]), name
            assert np.array_equal(_parts(out)[name].arrays["imu"], before.arrays["imu"]), name
        perm = np.random.default_rng([5, PERMUTATION_TAG]).permutation(len(sp.train))   # train: the first part
        assert np.array_equal(np.asarray(out.train.arrays["video"]), sp.train.arrays["video"][perm])
        assert not np.array_equal(perm, np.arange(len(perm)))
        joined = training_set(out).arrays["video"]                  # what transfer training iterates over
        assert isinstance(joined, (LazyRows, ConcatRows))
        assert np.array_equal(np.asarray(joined), np.concatenate([in_memory.train.arrays["video"],
                                                                  in_memory.unlabeled.arrays["video"]]))


def test_after_break_pairing_the_target_says_nothing_of_the_label():
    """Two sensors that each carry the label (its one-hot code plus noise): a linear model
    of the target is far above chance on the paired data and at chance once the target is
    shuffled; and a fixed predictor's test macro recall, averaged over shuffles, is
    1 / classes (the control's expectation for every method)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 800)
    code = np.eye(4, dtype=np.float32)[labels][:, None, :]                      # (N, T=1, F=4)
    arrays = {m: code + rng.normal(0, 0.3, code.shape).astype(np.float32) for m in ("a", "b")}
    sp = from_arrays(arrays, labels, kinds={"a": "features", "b": "features"}, groups="samples", seed=0)

    def flat(ds):
        return np.asarray(ds.arrays["b"]).reshape(len(ds), -1)

    def fit_and_score(s):
        clf = LogisticRegression().fit(flat(s.train), s.train.labels)
        return classification_metrics(s.test.labels, clf.predict(flat(s.test)), 4)["recall"], clf

    paired, clf = fit_and_score(sp)
    broken, _ = fit_and_score(break_pairing(sp, "b", seed=0))
    assert paired > 0.8 and abs(broken - 1 / 4) < 0.1, (paired, broken)
    recalls = [classification_metrics(sp.test.labels, clf.predict(flat(break_pairing(sp, "b", seed=s).test)),
                                      4)["recall"] for s in range(200)]
    assert abs(np.mean(recalls) - 1 / 4) < 3 * np.std(recalls) / np.sqrt(len(recalls)), np.mean(recalls)


def test_chance_recall_is_the_shuffled_expectation_also_when_the_test_lacks_classes():
    """Macro recall averages over the classes present in the test part: with a class absent
    (a subject fold, a class no recording holds) the shuffled expectation is not 1 / classes,
    and predictions naming the absent class lower it. ``chance_recall`` is that expectation,
    from the confusion matrix; the mean over every permutation is exact, so check many."""
    import warnings

    from dcatkit.metrics import chance_recall

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 60)                                       # classes 0-2 of 4: class 3 absent
    pred = rng.choice(4, 60, p=[0.2, 0.3, 0.1, 0.4])                 # and often predicted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = classification_metrics(y, pred, 4)
        shuffled = [classification_metrics(y, pred[rng.permutation(60)], 4)["recall"] for _ in range(2000)]
    expected = np.mean([np.mean(pred == c) for c in range(3)])       # mean over present classes of their shares
    assert chance_recall(m["confusion"]) == pytest.approx(expected)
    assert abs(np.mean(shuffled) - expected) < 4 * np.std(shuffled) / np.sqrt(len(shuffled))
    assert abs(expected - 1 / 4) > 0.05 and abs(expected - 1 / 3) > 0.05
    full = classification_metrics(y, np.where(pred == 3, 0, pred), 4)
    y4 = np.r_[y, 3]
    assert chance_recall(classification_metrics(y4, np.r_[pred, 3], 4)["confusion"]) == pytest.approx(1 / 4)
    assert chance_recall(full["confusion"]) == pytest.approx(1 / 3)      # no prediction of the absent class


def test_with_teacher_is_a_copy_of_the_target_and_default_labels():
    sp = tiny_splits(96, modalities=("imu", "audio"))
    sp.train.normalization["imu"] = {"method": "minmax", "min": [0.0] * 6, "max": [1.0] * 6}
    for target in ("imu", "audio"):
        out = with_teacher(sp, target)
        t = teacher_name(target)
        assert t == f"{target}_teacher" and out.modalities == (*sp.modalities, t)
        for name in ("train", "val", "test"):
            part, was = getattr(out, name), getattr(sp, name)
            assert np.array_equal(part.arrays[t], was.arrays[target]) and part.kind(t) == was.kind(target)
            assert part.sample_rates.get(t) == was.sample_rates.get(target)
            assert np.array_equal(part.labels, was.labels) and part.ids == was.ids
        assert out.normalization.get(t) == sp.normalization.get(target)
    with pytest.raises(ValueError, match="already has a modality 'imu_teacher'"):
        with_teacher(with_teacher(sp, "imu"), "imu")
    # a tenth of the training recordings, at least one per class, at most all but one
    assert default_labels(sp) == 8                                   # 57 recordings: round(5.7) < 8 classes
    big = load("synthetic", modalities=("imu",), n_samples=1000, seed=0)
    assert default_labels(big) == 70                                 # 700 training recordings
    assert default_labels(tiny_splits(195, modalities=("imu",))) == 12        # 117 recordings: 11.7 rounds up
    assert default_labels(tiny_splits(14, modalities=("imu",))) == 7          # 8 recordings: one stays unlabeled


def test_control_studies_in_a_sweep(tmp_path):
    """The three studies' runs: the negative control trains on the shuffled target from the
    main study's source (no new source), read on recall; the positive control's source is
    the target's copy trained on every label, its target keeps the labels asked for, and
    its baseline is the few-label baseline (train_unimodal on those labels, bit for bit)."""
    kw = dict(seeds=[0, 1], workers=0, progress=False, epochs_source=1, epochs_target=1, data_options=SMALL)
    studies = control_studies(["none", "dcat"], sizes=[120], control_labels=12)
    assert [s["study"] for s in studies] == list(STUDY_METRIC)
    df = run_studies(tmp_path, studies, **kw)
    assert df.groupby("study", sort=False).size().to_dict() == {"main": 4, "negative control": 4,
                                                                "positive control": 4}
    assert len(list((tmp_path / "sources").glob("video_*.pt"))) == 2            # main and negative share them
    assert len(list((tmp_path / "sources").glob("imu_teacher_*.pt"))) == 2
    main, neg, pos = (df[df.study == s].set_index(["method", "seed"]) for s in STUDY_METRIC)
    assert (neg["source_f1"] == main["source_f1"]).all()
    assert (neg["train_loss_last"] != main["train_loss_last"]).all() and (neg["n_train"] == main["n_train"]).all()
    assert (pos["n_train"] == 12).all() and (pos["n_unlabeled"] == main["n_train"] - 12).all()
    assert (main["n_unlabeled"] == 0).all() and (df["n_classes"] == 8).all()
    # the negative control's baseline is the IMU model trained on the shuffled draw
    sp = load("synthetic", split="id", seed=1, modalities=("video", "imu"), n_samples=120, **SMALL)
    shuffled = break_pairing(sp, "imu", seed=1)
    base = train_unimodal(shuffled, "imu", preset="synthetic", epochs=1, seed=1, progress=False)
    assert neg.loc[("none", 1), "train_loss_last"] == base.history["train_loss"].iloc[-1]
    assert neg.loc[("none", 1), "recall"] == base.test["recall"]
    # the positive control: the teacher is the IMU copy trained on every label; the target keeps 12
    teach = train_unimodal(with_teacher(sp, "imu"), "imu_teacher", preset="synthetic", epochs=1, seed=1,
                           progress=False)
    assert pos.loc[("none", 1), "source_f1"] == teach.test["f1"]
    few = hide_labels(with_teacher(sp, "imu"), 12, seed=1)
    fb = train_transfer(few, teach, "imu", method="none", preset="synthetic", epochs=1, seed=1, progress=False)
    assert pos.loc[("none", 1), "train_loss_last"] == fb.history["train_loss"].iloc[-1]
    assert pos.loc[("none", 1), "f1"] == fb.test["f1"]


def test_control_settings_are_checked_before_anything_trains(tmp_path):
    kw = dict(methods=["none", "dcat"], seeds=[0], workers=0, progress=False)
    with pytest.raises(ValueError, match="control must be None or one of"):
        run_transfer_sweep(tmp_path, control="shuffled", **kw)
    with pytest.raises(ValueError, match="positive control's source is the target's copy 'imu_teacher'"):
        run_transfer_sweep(tmp_path, control="positive", **kw)
    with pytest.raises(ValueError, match="n_labeled must be None"):
        run_transfer_sweep(tmp_path, n_labeled=0, **kw)
    # more labels than the training recordings (84 of 120 samples), or all of them (no unlabeled pair
    # left, no few-label setting): said before the sources train, not by every target run after them
    small = dict(seeds=[0], workers=0, progress=False, data_options=SMALL)
    for k in (500, 84):
        with pytest.raises(ValueError, match=f"control_labels = {k}: .* data \\(size 120\\) has 84 training "
                                             "recordings: give fewer than 84"):
            run_studies(tmp_path, control_studies(["none"], sizes=[120], control_labels=k), **small)
    assert not (tmp_path / "sources").exists()


def test_control_labels_are_checked_in_every_draw(tmp_path):
    """A subject-disjoint split puts a different number of recordings in training in each draw
    (the simulator's "ood" split at 120: 71 in draw 0, 65 in draw 3). 68 labels fit draw 0 but
    leave draw 3 no unlabeled pair: refused, naming that draw, before anything trains."""
    from dcatkit.sweep import _splits

    counts = {d: len(set(_splits("synthetic", None, "ood", d, 120, "headroom", SMALL, ("imu_teacher", "imu"),
                                 None, "positive").train.groups)) for d in (0, 3)}
    assert counts == {0: 71, 3: 65}
    with pytest.raises(ValueError, match=r"control_labels = 68: .* data \(draw 3, size 120\) has 65 training "
                                         "recordings: give fewer than 65"):
        run_studies(tmp_path, control_studies(["none"], sizes=[120], control_labels=68), split="ood",
                    data_seeds=[0, 3], seeds=[0], workers=0, progress=False, data_options=SMALL)
    assert not (tmp_path / "sources").exists()


def test_cli_sweep_with_controls_prints_each_study_on_its_metric(tmp_path, capsys):
    from dcatkit.__main__ import main

    out = tmp_path / "s"
    args = ["sweep", "--quick", "--seeds", "0", "--methods", "none", "dcat", "--out", str(out),
            "--data-option", "frame_size=16", "--data-option", "n_frames=4"]
    assert main([*args, "--controls", "--control-labels", "10"]) == 0
    text = capsys.readouterr().out
    for head in ("== main: video -> imu", "== negative control: video -> imu",
                 "test macro recall above the run's chance (recall - chance_recall)",
                 "== positive control: imu_teacher -> imu", "chance: 0.125",
                 "labels kept: 10 training recordings (10 of 112 samples"):
        assert head in text, head
    assert "No controls ran" not in text
    summary = pd.read_csv(out / "summary.csv")
    assert summary.study.unique().tolist() == list(STUDY_METRIC)
    neg = pd.read_csv(out / "results.csv").query("study == 'negative control'")
    assert summary.query("study == 'negative control' and method == 'none'")["mean"].iloc[0] == pytest.approx(
        neg.query("method == 'none'")["recall_above_chance"].mean())       # read on recall above chance
    assert np.allclose(neg["recall_above_chance"], neg["recall"] - neg["chance_recall"])
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    plain = " ".join(capsys.readouterr().out.split())
    assert "No controls ran beside this grid: --controls adds" in plain
    # what the negative control pins: recall above chance, in expectation (a run's recall itself can move
    # when a class is missing from the test part: metrics.chance_recall), as STUDY_TEXT says
    assert "(the target's inputs shuffled: no method can move its recall above chance, in expectation)" in plain
    assert main([*args, "--control-labels", "10"]) == 2
    assert "--control-labels sets the positive control's labels" in capsys.readouterr().err


def test_cli_chance_line_says_when_chance_is_not_one_over_classes():
    """The negative control's printed chance is each run's own (``chance_recall``), not
    1 / the model's classes: a real dataset's test part often lacks some classes."""
    from dcatkit.__main__ import _chance_line

    same = pd.DataFrame({"chance_recall": [1 / 3, 1 / 3], "n_classes": [8, 8]})
    assert _chance_line(same) == "chance: 0.333 (every method's expected recall)"
    text = _chance_line(pd.DataFrame({"chance_recall": [0.2, 0.25], "n_classes": [8, 8]}))
    assert text.startswith("chance: 0.200 to 0.250 by run") and "can differ between methods" in text


def test_results_md_controls_table_is_what_the_runs_give():
    """benchmarks/RESULTS.md's "Controls on any dataset" table is benchmarks/controls_sweep.py's
    summary of the committed runs, row for row (the CLI's statistics: t on draw means, Holm
    within each study, each study on its metric); the README quotes its numbers."""
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo / "benchmarks"))
    try:
        import controls_sweep
    finally:
        sys.path.pop(0)
    runs = pd.read_csv(controls_sweep.RUNS)
    assert len(runs) == 450 and runs.groupby("study").size().eq(150).all()
    table = controls_sweep.summarise(runs)
    text = (repo / "benchmarks" / "RESULTS.md").read_text()
    section = text[text.index("## Controls on any dataset"):]
    section = section[:section.index("\n## ")]
    for row in controls_sweep.markdown(table).splitlines():
        assert row in section, f"RESULTS.md lacks the row the runs give: {row}"
    neg, pos = table[table.study == "negative control"], table[table.study == "positive control"]
    assert (neg.call == "no evidence").all() and (pos.call == "helps").all()      # what the prose says
    assert runs.query("study == 'positive control' and method == 'none'")["n_train"].eq(21).all()
    readme = (repo / "README.md").read_text()
    dcat1 = pos[(pos.method == "dcat") & (pos.lam == 1)].iloc[0]
    assert dcat1.pooled.replace("-", "−") in readme or dcat1.pooled in readme
    ca = runs[(runs.method == "dcat") & (runs.lam == 1)].groupby("study")["train_ca_last"]
    pos_ca = ca.get_group("positive control")
    for shown in (f"ends at {pos_ca.mean():.3f} on average here ({pos_ca.min():.3f} to {pos_ca.max():.3f}",
                  f"{ca.get_group('main').mean():.3f} from the video source in the main study"):
        assert shown in " ".join(section.split()), shown
    assert f"sums to {runs.train_time_s.sum() / 60:.1f} core-minutes" in " ".join(section.split())
    from test_notebooks import _outputs_text

    nb06 = _outputs_text("06_when_transfer_helps")                   # (c)'s dcat at lambda = 1: first, last L_CA
    assert "1.102 from notebook 06's noise-free teacher" in " ".join(section.split())
    assert "  dcat   1.000       0.018            1.396           1.102" in nb06
    kd1 = table[(table.study == "main") & (table.method == "kd") & (table.lam == 1)].iloc[0]
    assert kd1.call == "hurts" and kd1.pooled.replace("-", "−") in readme
    assert kd1.pooled.replace("-", "−") in (repo / "FINDINGS.md").read_text()    # its "Earlier claims that changed"


def test_controls_on_a_real_dataset_layout(tmp_path):
    """--controls on a real dataset's layout (a Cough fixture: audio source, IMU target): the
    positive control's teacher is the IMU copy of the loader's own windows (its data, the copy
    included, has its own identity), the negative control's target is the loader's IMU
    shuffled, trained from the main study's audio source: its setup is the main study's
    (the shuffle follows from the data and the seed), so no second source trains."""
    pytest.importorskip("soundfile", reason="the Cough fixture writes wav files with soundfile")
    import warnings

    from dcatkit import sweep
    from fixtures_data import make_cough

    root = tmp_path / "cough"
    root.mkdir()
    make_cough(root)
    opts = {"sample_rate": 8000, "progress": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = run_studies(tmp_path / "sw", control_studies(["none", "dcat"]), seeds=[0], workers=0, progress=False,
                         dataset="cough", root=str(root), source="audio", target="imu", preset="synthetic",
                         epochs_source=1, epochs_target=1, data_options=opts)
        sp = load("cough", root, modalities=("audio", "imu"), seed=0, **opts)
    assert df.groupby("study", sort=False).size().to_dict() == {"main": 2, "negative control": 2,
                                                                "positive control": 2}
    assert df.groupby("study").setup.nunique().eq(1).all() and df.setup.nunique() == 2
    assert (df[df.study == "negative control"].setup.values == df[df.study == "main"].setup.values).all()
    assert len(list((tmp_path / "sw" / "sources").glob("audio_*.pt"))) == 1         # one source, shared
    pos, main = df[df.study == "positive control"], df[df.study == "main"]
    k = default_labels(sp)
    few = hide_labels(sp, k, seed=0)                  # k recordings keep their labels, with all their windows
    assert (pos.source == "imu_teacher").all() and (pos.n_recordings == k).all() and k < len(set(sp.train.groups))
    assert (pos.n_train == len(few.train)).all() and (pos.n_unlabeled == len(few.unlabeled)).all()
    assert (main.n_recordings == len(set(sp.train.groups))).all()
    neg = df[df.study == "negative control"]
    assert (neg.source_f1.values == main.source_f1.values).all()          # the main study's audio source
    present = len(np.unique(sp.test.labels))       # 4 classes have no sample at all: chance is not 1 / 8
    assert present < 8 and (neg.chance_recall <= 1 / present + 1e-9).all()
    shuffled = sweep._splits("cough", str(root), "id", 0, None, None, opts, ("audio", "imu"), control="negative")
    assert _rows(shuffled.test.arrays["imu"]) == _rows(sp.test.arrays["imu"])
    assert not np.array_equal(shuffled.test.arrays["imu"], sp.test.arrays["imu"])


def test_labels_line_is_per_size_when_the_grid_has_several():
    """With two sizes the positive control keeps a different number of labels at each: the
    line says each size's own, not the first run's for all."""
    from dcatkit.__main__ import _labels_line

    rows = [{"n_samples": n, "method": m, "seed": s, "n_recordings": k, "n_train": k, "n_unlabeled": 10 * k - k,
             "source_f1": 0.8, "f1": 0.3 if m == "none" else 0.5}
            for n, k in ((300, 21), (1000, 70)) for m in ("none", "dcat") for s in (0, 1)]
    text = _labels_line(pd.DataFrame(rows))
    assert text.splitlines() == [
        "n_samples = 300: labels kept: 21 training recordings (21 of 210 samples, the rest unlabeled pairs); the "
        "teacher's test F1 0.800 against the baseline's 0.300: the room a transfer has here",
        "n_samples = 1000: labels kept: 70 training recordings (70 of 700 samples, the rest unlabeled pairs); the "
        "teacher's test F1 0.800 against the baseline's 0.300: the room a transfer has here"]
    one = _labels_line(pd.DataFrame([r for r in rows if r["n_samples"] == 300]))
    assert one.startswith("labels kept: 21 training recordings")


def test_labels_line_says_each_data_draws_labels_when_they_differ():
    """A subject-disjoint split keeps other training recordings in each data draw, so the
    positive control keeps a different number of labels in each (19, 16, 17 in a 3-draw ood
    sweep): the line gives each draw's own counts and their range, not draw 0's for all; draws
    that agree (and a grid of one draw) keep the one-number line."""
    from dcatkit.__main__ import _labels_line

    kept = {0: (19, 167), 1: (16, 149), 2: (17, 154)}             # draw: (recordings kept, unlabeled samples)
    rows = [{"n_samples": 300, "data_seed": d, "method": m, "seed": s, "n_recordings": k, "n_train": k,
             "n_unlabeled": u, "source_f1": 0.5 + d / 10, "f1": 0.2 + d / 10 if m == "none" else 0.4}
            for d, (k, u) in kept.items() for m in ("none", "dcat") for s in (0, 1)]
    df = pd.DataFrame(rows)
    assert _labels_line(df) == (
        "labels kept: 16 to 19 training recordings by data draw (draw 0: 19 recordings, 19 of 186 samples; "
        "draw 1: 16 recordings, 16 of 165 samples; draw 2: 17 recordings, 17 of 171 samples; the rest unlabeled "
        "pairs); the teacher's test F1 0.600 against the baseline's 0.300: the room a transfer has here")
    assert _labels_line(df[df.data_seed == 1]).startswith(
        "labels kept: 16 training recordings (16 of 165 samples, the rest unlabeled pairs)")
    same = df.assign(n_recordings=19, n_train=19, n_unlabeled=167)
    assert _labels_line(same).startswith("labels kept: 19 training recordings (19 of 186 samples, the rest")
    two = pd.concat([df, df.assign(n_samples=1000, n_recordings=df.n_recordings * 3)])   # per size, then per draw
    assert [line.split(" training")[0] for line in _labels_line(two).splitlines()] == [
        "n_samples = 300: labels kept: 16 to 19", "n_samples = 1000: labels kept: 48 to 57"]


def test_control_labels_below_one_is_refused_by_its_own_name(capsys):
    from dcatkit.__main__ import main

    with pytest.raises(SystemExit) as stop:                  # argparse's own exit, status 2
        main(["sweep", "--controls", "--control-labels", "0", "--out", "unused"])
    assert stop.value.code == 2
    assert "--control-labels: expected an integer >= 1, got '0'" in capsys.readouterr().err


def test_controls_in_two_shards_then_gathered_are_the_one_process_sweep(tmp_path):
    """A sweep with its controls split into two shards that share one folder, then gathered,
    gives the one-process table run for run (the teachers and the shared sources included)."""
    kw = dict(seeds=[0, 1], workers=0, progress=False, epochs_source=1, epochs_target=1, data_options=SMALL)
    studies = control_studies(["none", "dcat"], sizes=[120], control_labels=12)
    whole = run_studies(tmp_path / "one", studies, **kw)
    parts = [run_studies(tmp_path / "sharded", studies, shard=f"{k}/2", **kw) for k in (1, 2)]
    assert sum(len(p) for p in parts) == len(whole) and all(len(p) for p in parts)
    gathered = run_studies(tmp_path / "sharded", studies, gather=True, **kw)
    timing = ["wall_s", "train_time_s"]
    pd.testing.assert_frame_equal(gathered.drop(columns=timing), whole.drop(columns=timing), check_dtype=False)
    assert sorted(p.name for p in (tmp_path / "sharded" / "sources").glob("*.pt")) == \
        sorted(p.name for p in (tmp_path / "one" / "sources").glob("*.pt"))


def test_committed_controls_runs_have_todays_setup():
    """The committed controls runs are the simulator's of today's code: their main study's
    `setup` is today's `setup_fingerprint()` (video -> IMU, synthetic). Anything it hashes
    (presets, the simulator's settings, `data.RATIOS`) changing makes every stored synthetic run
    train again, users' folders included; when that is meant, rerun benchmarks/controls_sweep.py
    so the committed runs come from the code that would make them (adding the arrays dataset to
    RATIOS did this by accident once)."""
    from pathlib import Path

    from dcatkit.sweep import setup_fingerprint

    runs = pd.read_csv(Path(__file__).resolve().parent.parent / "benchmarks" / "controls_sweep_runs.csv",
                       dtype={"setup": str})
    assert set(runs[runs.study == "main"].setup) == {setup_fingerprint()}
    assert not runs.env_git_commit.str.endswith("-dirty").any()        # trained from a committed tree
