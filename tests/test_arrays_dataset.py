"""Your own sensors as a dataset on disk (dcatkit.data.arrays): save_arrays writes one .npz,
load("arrays", root=...) is from_arrays on it, and the sweep (with its controls), the CLI and
the notebooks' data parameters take it like any dataset."""
import zipfile

import numpy as np
import pytest

from dcatkit.data import from_arrays, load, save_arrays
from dcatkit.data.arrays import read_arrays
from dcatkit.experiment import train_transfer, train_unimodal

KINDS = {"acc": "timeseries", "gyro": "timeseries"}
CLASSES = ["walk", "run", "sit", "stand"]


def wrist(n_rec: int = 40, per_rec: int = 6, seed: int = 0):
    """The README's wrist example: 4 activities, windows (3 axes x 64) cut from recordings, and
    a subject per 4 recordings (for the subject splits)."""
    rng = np.random.default_rng(seed)
    n = n_rec * per_rec
    labels = np.repeat(np.arange(4), n // 4)
    recording = np.arange(n) // per_rec
    t = np.linspace(0, 2 * np.pi, 64)
    motion = np.sin((labels[:, None, None] + 1) * t + rng.uniform(0, 6, (n, 3, 1)))
    acc = 9.81 * motion + rng.normal(0, 0.5, (n, 3, 64))
    gyro = 200 * np.gradient(motion, axis=2) + rng.normal(0, 5, (n, 3, 64))
    subjects = recording % 5
    return {"acc": acc, "gyro": gyro}, labels, recording, subjects


def _same(a, b):
    """Two Splits hold the same samples, in the same order, with the same ids, items and scaling."""
    for part in ("train", "val", "test"):
        x, y = getattr(a, part), getattr(b, part)
        assert list(x.ids) == list(y.ids) and np.array_equal(x.labels, y.labels)
        for m in x.arrays:
            assert np.array_equal(np.asarray(x.arrays[m]), np.asarray(y.arrays[m])), (part, m)
    assert a.kinds == b.kinds and a.classes == b.classes
    assert a.report["data_fingerprint"] == b.report["data_fingerprint"]
    for m, v in a.normalization.items():
        assert all(np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(v, b.normalization[m]))


@pytest.mark.parametrize("split, seed", [("id", 0), ("id", 3), ("ood", 1)])
def test_saved_arrays_load_as_from_arrays_gives_them(tmp_path, split, seed):
    arrays, labels, recording, subjects = wrist()
    path = save_arrays(tmp_path / "wrist", arrays, labels, groups=recording, subjects=subjects, kinds=KINDS,
                       classes=CLASSES, sample_rates={"acc": 50, "gyro": 50})
    assert path.name == "wrist.npz" and not list(tmp_path.glob("*.part"))
    got = load("arrays", root=path, split=split, seed=seed)
    want = from_arrays(arrays, labels, subjects, CLASSES, split=split, seed=seed, groups=recording, kinds=KINDS,
                       sample_rates={"acc": 50, "gyro": 50})
    _same(got, want)
    assert got.report["dataset"] == "arrays"
    one = load("arrays", root=path, split=split, seed=seed, modalities=["gyro"])
    assert list(one.train.arrays) == ["gyro"] and list(one.train.ids) == list(want.train.ids)
    assert one.report["data_fingerprint"] == want.report["data_fingerprint"] and one.report["id_source"] == "content"


def test_a_subset_is_read_without_the_other_modalities(tmp_path, monkeypatch):
    """A video beside an IMU in one file: a run of the IMU alone must not hold the video in memory
    (every sweep worker loads its data). The samples' content ids over every modality are kept in
    the file, so the subset reads only its own sensor and still names the samples as a whole load
    does; a file saved before the ids were kept is read whole to hash them, with the same result."""
    import dcatkit.data.arrays as A

    arrays, labels, recording, subjects = wrist()
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups=recording, subjects=subjects, kinds=KINDS)
    whole = load("arrays", root=path, seed=2)
    read, entry = [], A._entry
    monkeypatch.setattr(A, "_entry", lambda p, f, key: read.append(key) or entry(p, f, key))
    one = load("arrays", root=path, seed=2, modalities=["gyro"])
    assert "sensor_1" in read and "sensor_0" not in read, read            # gyro is sensor_1; acc never read
    assert list(one.train.ids) == list(whole.train.ids) and one.report["id_source"] == "content"
    assert one.report["data_fingerprint"] == whole.report["data_fingerprint"]

    with np.load(path) as f:                                   # as save_arrays wrote files before
        older = {k: f[k] for k in f.files if k != "content_ids"}
    np.savez(tmp_path / "older.npz", **older)
    read.clear()
    old = load("arrays", root=tmp_path / "older.npz", seed=2, modalities=["gyro"])
    assert "sensor_0" in read                                  # no kept ids: every modality hashed
    assert list(old.train.ids) == list(one.train.ids) and old.report["data_fingerprint"] == one.report["data_fingerprint"]
    with pytest.raises(ValueError, match=r"has no modality \['video'\]: it holds \['acc', 'gyro'\]"):
        load("arrays", root=path, modalities=["video"])


def test_cross_validation_and_ids_round_trip(tmp_path):
    arrays, labels, recording, subjects = wrist()
    ids = [f"rec{r}_w{i % 6}" for i, r in enumerate(recording)]
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups=recording, subjects=subjects, ids=ids,
                       kinds=KINDS)
    got = load("arrays", root=path, split="loso")
    want = from_arrays(arrays, labels, subjects, split="loso", groups=recording, ids=ids, kinds=KINDS)
    assert len(got) == len(want) == 5
    for g, w in zip(got, want):
        _same(g, w)
    assert got[0].report["id_source"] == "given"


def test_a_file_that_is_not_saved_arrays_says_what_was_expected(tmp_path):
    arrays, labels, recording, _ = wrist()
    with pytest.raises(FileNotFoundError, match=r"no file .*missing\.npz .*written by dcatkit.data.save_arrays"):
        load("arrays", root=tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load("arrays", root=tmp_path)
    np.save(tmp_path / "one.npy", labels)
    with pytest.raises(ValueError, match="holds a single array"):
        read_arrays(tmp_path / "one.npy")
    np.savez(tmp_path / "plain.npz", acc=arrays["acc"], labels=labels)
    with pytest.raises(ValueError, match=r"no 'meta' entry \(found \['acc', 'labels'\]\)"):
        read_arrays(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz is not a .npz file written by dcatkit.data.save_arrays"):
        read_arrays(tmp_path / "text.npz")
    np.savez(tmp_path / "objects.npz", meta=np.array([{"format": "dcatkit-arrays/1"}], dtype=object))
    with pytest.raises(ValueError, match="entry 'meta' holds Python objects, which would need pickle"):
        read_arrays(tmp_path / "objects.npz")                    # never unpickled
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups=recording, kinds=KINDS)
    with pytest.raises(ValueError, match=r"has no modality \['imu'\]: it holds \['acc', 'gyro'\]"):
        load("arrays", root=path, modalities=["imu"])
    cut = tmp_path / "cut.npz"                                   # an entry lost (a damaged copy)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(cut, "w") as dst:
        for item in src.infolist():
            if item.filename != "sensor_1.npy":
                dst.writestr(item, src.read(item.filename))
    with pytest.raises(ValueError, match=r"cut.npz lacks \['sensor_1'\]"):
        load("arrays", root=cut)
    with pytest.raises(ValueError, match="seed"):
        load("arrays", root=path, seed=-1)
    with pytest.raises(ValueError, match=r"arrays takes no option\(s\) \['frame_size'\]"):
        load("arrays", root=path, frame_size=8)


def test_save_checks_first_and_never_leaves_half_a_file(tmp_path, monkeypatch):
    """from_arrays' checks run before anything is written; a save interrupted while writing
    leaves the earlier file as it was and no temporary file."""
    arrays, labels, recording, _ = wrist()
    with pytest.raises(ValueError, match="gyro"):
        save_arrays(tmp_path / "bad.npz", {**arrays, "gyro": arrays["gyro"][:-1]}, labels, groups=recording,
                    kinds=KINDS)
    with pytest.raises(ValueError, match="kind"):
        save_arrays(tmp_path / "bad.npz", arrays, labels, groups=recording)       # acc, gyro: kinds needed
    assert not list(tmp_path.iterdir())
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups=recording, kinds=KINDS)
    before = path.read_bytes()

    def broken(f, **payload):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        save_arrays(path, {k: v * 2 for k, v in arrays.items()}, labels, groups=recording, kinds=KINDS)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_sweep_with_controls_on_saved_arrays(tmp_path, capsys):
    """`sweep --controls --dataset arrays`: the three studies on your own sensors, the runs equal
    to training on load("arrays") in this process (the positive control's teacher is the
    gyroscope's copy, gyro_teacher), and run identities that follow the file's content."""
    import pandas as pd

    from dcatkit.__main__ import main

    arrays, labels, recording, _ = wrist()
    path = save_arrays(tmp_path / "wrist.npz", arrays, labels, groups=recording, kinds=KINDS, classes=CLASSES)
    args = ["sweep", "--controls", "--dataset", "arrays", "--root", str(path), "--source", "acc", "--target", "gyro",
            "--methods", "none", "dcat", "--seeds", "0", "--data-seeds", "0-1", "--epochs-source", "1",
            "--epochs-target", "1", "--workers", "0", "--out", str(tmp_path / "sw")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "== main: acc -> gyro, arrays/id" in out and "== positive control: gyro_teacher -> gyro" in out
    df = pd.read_csv(tmp_path / "sw" / "results.csv")
    assert df.groupby("study", sort=False).size().to_dict() == {"main": 4, "negative control": 4,
                                                                "positive control": 4}
    sp = load("arrays", root=path, seed=1)
    src = train_unimodal(sp, "acc", preset="synthetic", epochs=1, seed=0, progress=False)
    dcat = train_transfer(sp, src, "gyro", method="dcat", lam=1.0, preset="synthetic", epochs=1, seed=0,
                          progress=False)
    row = df[(df.study == "main") & (df.method == "dcat") & (df.data_seed == 1)].iloc[0]
    assert row.source_f1 == src.test["f1"] and row.f1 == dcat.test["f1"]
    assert (df[df.study == "positive control"].source == "gyro_teacher").all()
    # the same file again: every run is read back, none written; other content under the same
    # name: a new data identity, so new runs beside the old ones (nothing stale is reused)
    runs = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "sw" / "runs").glob("*.json")}
    assert main(args) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "sw" / "runs").glob("*.json")} == runs
    save_arrays(path, {**arrays, "gyro": arrays["gyro"][:, :, ::-1]}, labels, groups=recording, kinds=KINDS,
                classes=CLASSES)
    assert main(args) == 0
    capsys.readouterr()
    again = pd.read_csv(tmp_path / "sw" / "results.csv")
    assert len(again) == len(df) and not set(df.setup) & set(again.setup)       # this grid's runs: all new
    assert len(list((tmp_path / "sw" / "runs").glob("*.json"))) == 2 * len(runs)   # the old ones kept beside
    assert (again.f1.values != df.f1.values).any()                                  # trained on the new file


@pytest.mark.parametrize("name", ["01_preprocessing", "02_unimodal", "03_transfer"])
def test_notebooks_run_on_saved_arrays_with_your_names(tmp_path, name):
    """The notebooks' data parameters take your own sensors: dataset="arrays", data_root the
    file, source / target your names (acc -> gyro). Each model's kind comes from the data
    (a name other than imu / video / audio has none by itself), and 01 draws them by kind."""
    pytest.importorskip("papermill", reason="the notebooks run through papermill (CI installs it)")
    import os
    import subprocess
    import sys
    from pathlib import Path

    nb = Path(__file__).resolve().parent.parent / "notebooks"
    arrays, labels, recording, subjects = wrist()
    path = save_arrays(tmp_path / "wrist.npz", arrays, labels, groups=recording, subjects=subjects, kinds=KINDS,
                       classes=CLASSES)
    args = ["-p", "dataset", "arrays", "-p", "data_root", str(path), "-p", "out_dir", str(tmp_path / "out")]
    if name != "01_preprocessing":
        args += ["-p", "source", "acc", "-p", "target", "gyro", "-p", "epochs", "1", "-p", "source_epochs", "1"]
    env = {**{k: v for k, v in os.environ.items() if k != "DCATKIT_FIGURES_DIR"}, "MPLBACKEND": "Agg",
           "DCATKIT_CACHE": str(tmp_path / "cache"), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    r = subprocess.run([sys.executable, "-m", "papermill", str(nb / f"{name}.ipynb"), str(tmp_path / "out.ipynb"),
                        "-k", "python3", "--no-progress-bar", *args], cwd=nb, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"papermill {name} on saved arrays:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    text = (tmp_path / "out.ipynb").read_text()
    assert "arrays" in text and ("gyro" in text if name != "01_preprocessing" else "acc" in text)


def _readme_sweep_command() -> list[str]:
    """The README's `sweep ... --dataset arrays` command ("Your own sensors"), as arguments."""
    import re
    import shlex
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    m = re.search(r"python -m dcatkit (sweep (?:[^\n]*\\\n)*[^\n]*)", text[text.index("--dataset arrays") - 80:])
    assert m and "--dataset arrays" in m.group(1), "README.md shows no `python -m dcatkit sweep --dataset arrays ...`"
    return shlex.split(m.group(1).replace("\\\n", " "))


def test_readme_sweep_on_your_own_sensors_runs_at_ci_size(tmp_path, capsys, monkeypatch):
    """The README's command, on the file its snippet writes, at CI size (2 seeds, 2 draws, one
    epoch, in this process): every flag it shows is one the CLI takes, and it prints the three
    studies."""
    from dcatkit.__main__ import main

    arrays, labels, recording, _ = wrist()
    monkeypatch.chdir(tmp_path)
    save_arrays("wrist.npz", arrays, labels, groups=recording, kinds=KINDS, classes=CLASSES)
    args = _readme_sweep_command()
    assert args[args.index("--root") + 1] == "wrist.npz" and "--controls" in args
    ci = {"--seeds": ["0", "1"], "--data-seeds": ["0-1"]}
    for flag, values in ci.items():               # the same flags, smaller values
        i = args.index(flag)
        args[i + 1:i + 2] = values
    assert main(args + ["--epochs-source", "1", "--epochs-target", "1", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    for study in ("main: acc -> gyro", "negative control: acc -> gyro", "positive control: gyro_teacher -> gyro"):
        assert f"== {study}, arrays/id" in out


def test_notebook_parameters_check_a_saved_file(tmp_path):
    """paths.check_params (every notebook's first check): dataset="arrays" needs the file, and
    source / target must be names saved in it; the kinds come from the file."""
    from dcatkit import paths

    arrays, labels, recording, _ = wrist()
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups=recording, kinds=KINDS)
    got = paths.check_params(dataset="arrays", data_root=str(path), source="acc", target="gyro")
    assert got["data_root"] == path.resolve()
    assert paths.dataset_modalities("arrays", str(path)) == ("acc", "gyro")
    with pytest.raises(ValueError, match="needs data_root, the .npz file written by dcatkit.data.save_arrays"):
        paths.check_params(dataset="arrays", source="acc", target="gyro")
    with pytest.raises(ValueError, match=r"dataset 'arrays' has modalities \('acc', 'gyro'\), not 'video'"):
        paths.check_params(dataset="arrays", data_root=str(path), source="video", target="imu")
    with pytest.raises(FileNotFoundError, match=r"data_root '.*' -> .* is not a file: point it at the .npz"):
        paths.check_params(dataset="arrays", data_root=str(tmp_path), source="acc", target="gyro")
    with pytest.raises(ValueError, match="needs root=, the .npz file written by dcatkit.data.save_arrays"):
        load("arrays")


def test_readme_wrist_numbers_are_what_the_runs_give():
    """Every number of the README's wrist result ("Your own sensors") from
    benchmarks/wrist_controls_runs.csv: the README's command over 3 draws, then 5 (the same
    folder), each study on its metric, t on the draw means (sweep.summarise_studies)."""
    import re
    from pathlib import Path

    import pandas as pd

    from dcatkit import stats
    from dcatkit.sweep import summarise_studies

    repo = Path(__file__).resolve().parent.parent
    text = (repo / "README.md").read_text().replace("−", "-")
    said = re.sub(r"\s+", " ", text[text.index("Measured on this data"):text.index("says\nnothing about the method")])
    runs = pd.read_csv(repo / "benchmarks" / "wrist_controls_runs.csv")
    assert sorted(runs.data_seed.unique()) == [0, 1, 2, 3, 4] and sorted(runs.seed.unique()) == list(range(10))
    assert not runs.env_git_commit.str.endswith("-dirty").any()        # trained from a committed tree

    def cells(draws):
        summary, per_draw = summarise_studies(runs[runs.data_seed.isin(draws)])
        s = summary[summary.method != "none"].set_index("study")
        return {k: (stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, 3), r.call) for k, r in s.iterrows()}, \
            per_draw[(per_draw.method != "none") & (per_draw.study == "positive control")]

    three, pos = cells([0, 1, 2])
    for study in ("main", "negative control", "positive control"):
        interval, call = three[study]
        assert interval in said and call == "no evidence", (study, interval, call)
    assert f"on {int(pos.n_better.sum())} of {3 * 10} seeds" in said and (pos.diff_mean > 0).all()
    assert "(" + ", ".join(stats.signed(d, 3) for d in pos.diff_mean) + ")" in said
    five, _ = cells([0, 1, 2, 3, 4])
    assert f"call it: {five['positive control'][0]}, {five['positive control'][1]}" in said


def test_what_a_saved_file_holds_comes_back_as_given(tmp_path, monkeypatch):
    """Arguments given as iterators are saved whole (the checks before writing do not use them
    up), int class names stay ints, a ~ path is the home folder's, a subset of modalities
    reports the whole file's fingerprint also when ids were saved, and the file is readable
    as a plain open() would make it."""
    import os

    arrays, labels, recording, subjects = wrist()
    want = from_arrays(arrays, labels, subjects, [0, 1, 2, 3], groups=recording, kinds=KINDS,
                       ids=[f"w{i}" for i in range(len(labels))])
    monkeypatch.setenv("HOME", str(tmp_path))
    path = save_arrays("~/data/w.npz", arrays, iter(labels.tolist()), groups=(r for r in recording),
                       subjects=iter(subjects), classes=iter([0, 1, 2, 3]), ids=map("w{}".format, range(len(labels))),
                       kinds=KINDS)
    assert path == tmp_path / "data" / "w.npz" and path.is_file()
    _same(load("arrays", root=path), want)
    assert load("arrays", root=path).classes == [0, 1, 2, 3]
    gyro = load("arrays", root=path, modalities=["gyro"])
    assert gyro.report["data_fingerprint"] == want.report["data_fingerprint"] and gyro.report["id_source"] == "given"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_damaged_or_foreign_file_is_a_clear_error(tmp_path):
    """A flipped byte inside an entry, meta that is not save_arrays' JSON object, or meta
    without its fields: a ValueError naming the file and what to do, never a KeyError,
    AttributeError or zipfile's own exception."""
    import json
    import zipfile

    arrays, labels, recording, _ = wrist()
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups=recording, kinds=KINDS)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("sensor_0.npy")
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + 500] ^= 0xFF   # inside acc's data
    (tmp_path / "flipped.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"cannot read .*flipped.npz: entry 'sensor_0'.*damaged copy"):
        load("arrays", root=tmp_path / "flipped.npz")
    for name, meta, match in (("list", [1, 2], r"is format 'list'"),
                              ("text", "not json", r"'meta' entry is not the JSON save_arrays writes"),
                              ("nonames", {"format": "dcatkit-arrays/1", "kinds": {}, "classes": None,
                                           "sample_rates": None, "groups": None}, r"lacks or mistypes \['names'\]")):
        text = meta if isinstance(meta, str) else json.dumps(meta)
        np.savez(tmp_path / f"{name}.npz", meta=np.array(text), labels=labels)
        with pytest.raises(ValueError, match=match):
            load("arrays", root=tmp_path / f"{name}.npz")


def test_run_identity_follows_the_preset_kind_and_sample_rates_of_your_own_names(tmp_path, monkeypatch):
    """For your own names the setup fingerprint holds the preset resolved for each kind (not
    just the preset's name), and the data identity the kinds and sample rates; a preset with
    no row for a kind is refused before anything trains."""
    from dcatkit import presets
    from dcatkit.sweep import _transfer_params, data_identity, setup_fingerprint

    kinds = {"acc": "timeseries", "gyro": "timeseries"}
    before = setup_fingerprint("arrays", "synthetic", "acc", "gyro", regimes=[None], data="d", kinds=kinds)
    ts = presets.SYNTHETIC_BY_KIND["timeseries"]
    monkeypatch.setitem(presets.SYNTHETIC_BY_KIND, "timeseries", ts.with_(epochs=ts.epochs + 7))
    assert setup_fingerprint("arrays", "synthetic", "acc", "gyro", regimes=[None], data="d", kinds=kinds) != before
    monkeypatch.setitem(presets.SYNTHETIC_BY_KIND, "timeseries", ts)
    arrays, labels, recording, _ = wrist()
    rates = [data_identity(from_arrays(arrays, labels, groups=recording, kinds=KINDS, sample_rates={"acc": r,
                                                                                                   "gyro": 50}))
             for r in (50, 100)]
    assert rates[0] != rates[1]
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups=recording, kinds=KINDS)
    with pytest.raises(ValueError, match="Table I"):
        _transfer_params(["none"], [1.0], [None], [0], None, dict(dataset="arrays", root=str(path), source="acc",
                                                                   target="gyro", preset="paper"))


def test_notebook_checkpoint_names_of_your_own_names_follow_the_preset_of_their_kind(monkeypatch):
    """``runs.data_key`` on an "arrays" dataset fingerprints the preset resolved for each name's
    kind (the kinds are read from the loaded splits): a change of the timeseries preset renames the
    notebooks' checkpoints of acc -> gyro, so a model trained under the old preset is trained again,
    not read back (without the kinds, acc and gyro resolve to no preset and only the preset's
    name "synthetic" would be hashed, blind to its content)."""
    from dcatkit import presets, runs

    arrays, labels, recording, _ = wrist()
    sp = from_arrays(arrays, labels, groups=recording, kinds=KINDS)
    key = lambda: runs.data_key("arrays", "id", 0, {}, "synthetic", "acc", "gyro", splits=sp)
    before = key()
    assert key() == before                                  # the same data and presets: the same key
    ts = presets.SYNTHETIC_BY_KIND["timeseries"]
    monkeypatch.setitem(presets.SYNTHETIC_BY_KIND, "timeseries", ts.with_(epochs=ts.epochs + 7))
    assert key()["setup"] != before["setup"]


def test_float_audio_at_pcm_scale_is_refused_for_training_as_the_predictor_refuses_it(tmp_path):
    """wav.astype(np.float32) keeps int16's scale (|x| up to 32768): a model trained on it and
    fed [-1, 1] waveforms (the loaders', the Predictor's), or the other way round, classifies
    noise. from_arrays, save_arrays and an in-memory PairedDataset refuse a waveform whose peak
    is beyond 16 with the peak and the scaling, as the Predictor does; a waveform a little above
    1 (the synthetic data's reach 1.34), an audio spectrogram and log-mel 'features' are kept."""
    from dcatkit.data.dataset import WAVEFORM_PEAK_LIMIT, PairedDataset

    assert WAVEFORM_PEAK_LIMIT == 16
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 2
    wave = rng.uniform(-0.5, 0.5, (12, 400)).astype(np.float32)
    wave[3, 7] = 1.4
    kw = dict(groups="samples", classes=["a", "b"])
    ok = from_arrays({"audio": wave}, labels, **kw)
    assert np.abs(np.asarray(ok.train.arrays["audio"])).max() <= 1.4
    pcm = r"expected float samples in \[-1, 1\] \(peak here 45875.2;.*wav.astype\(np.float32\).*pass x / 32768"
    with pytest.raises(ValueError, match=rf"modality 'audio' \(audio\) is not a float waveform.*{pcm}"):
        from_arrays({"audio": wave * 32768}, labels, **kw)
    with pytest.raises(ValueError, match=pcm):
        save_arrays(tmp_path / "pcm.npz", {"audio": wave * 32768}, labels, **kw)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"peak here 17;"):
        PairedDataset({"mic": np.where(np.arange(400) == 5, 17.0, wave).astype(np.float32)}, labels, ["a", "b"],
                      kinds={"mic": "audio"})
    loud = (80.0 + rng.uniform(0, 1, (12, 8, 10))).astype(np.float32)  # log-mel values: no cut (distinct
    #                                                                    samples: identical ones are one recording)
    from_arrays({"spec": loud, "mel": loud}, labels, kinds={"spec": "audio", "mel": "features"}, **kw)
