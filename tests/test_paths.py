"""dcatkit.paths: repo-root resolution, checkpoint names, parameter checks."""
import math
import re
from pathlib import Path

import pytest

import dcatkit.data as D
from dcatkit import paths

REPO = Path(__file__).resolve().parent.parent


def test_repo_root_and_resolve_ignore_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("DCATKIT_ROOT", raising=False)
    assert paths.repo_root() == REPO
    for cwd in (tmp_path, REPO / "notebooks", REPO):
        monkeypatch.chdir(cwd)
        assert paths.resolve("outputs") == REPO / "outputs"
        assert paths.resolve("figures/x.png") == REPO / "figures" / "x.png"
    assert paths.resolve(tmp_path / "abs") == tmp_path / "abs"                # absolute paths kept
    assert paths.resolve("~/x") == Path.home() / "x"
    assert paths.shown(REPO / "outputs" / "a.csv") == str(Path("outputs") / "a.csv")
    assert paths.shown(tmp_path) == str(tmp_path)


def test_repo_root_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("DCATKIT_ROOT", str(tmp_path))
    assert paths.resolve("outputs") == tmp_path / "outputs"


def test_out_path_creates_folders(tmp_path):
    p = paths.out_path(tmp_path, "a", "b")
    assert p.is_dir()
    f = paths.out_path(tmp_path, "c", "file.csv")
    assert f.parent.is_dir() and not f.exists()


def test_checkpoint_path_keys_on_settings(tmp_path):
    a = paths.checkpoint_path(tmp_path, "source-video", dataset="synthetic", seed=0, data={"n": 1, "m": 2})
    b = paths.checkpoint_path(tmp_path, "source-video", seed=0, data={"m": 2, "n": 1}, dataset="synthetic")
    c = paths.checkpoint_path(tmp_path, "source-video", dataset="synthetic", seed=1, data={"n": 1, "m": 2})
    assert a == b                                   # order of settings does not matter
    assert a != c                                   # any setting does
    assert a.parent == tmp_path / "checkpoints" and a.name.startswith("source-video-") and a.suffix == ".pt"


def test_data_options():
    assert paths.data_options("synthetic", n_samples=96, frame_size=16, n_frames=4, cache_dir="x") == {
        "n_samples": 96, "frame_size": 16, "n_frames": 4}
    assert paths.data_options("synthetic") == {}
    opts = paths.data_options("uestc", n_samples=96, frame_size=112, n_frames=None, cache_dir="cache")
    assert opts == {"frame_size": 112, "cache_dir": str(REPO / "cache")}   # n_samples is synthetic-only
    assert paths.data_options("vggsound", n_frames=8) == {"frames": 8}


@pytest.mark.parametrize("kwargs", [{"frame_size": "abc"}, {"frame_size": 32.9}, {"frame_size": 0},
                                    {"n_frames": -1}, {"n_samples": True}])
def test_data_options_refuses_what_is_not_a_positive_int(kwargs):
    """frame_size='abc' was int()'s bare 'invalid literal', 32.9 silently became 32 and 0 went on to the loader."""
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=rf"{name} must be None \(the dataset's default\) or an int >= 1, got "
                                         rf"{re.escape(repr(value))}"):
        paths.data_options("synthetic", **kwargs)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_the_data_seed_must_be_an_int_from_0(seed):
    """A notebook's data_seed reaches data.load(seed=): -1 or 1.5 was numpy's 'expected non-negative integer'
    or 'seed must be integer' from inside the simulator, naming no argument."""
    with pytest.raises(ValueError, match=rf"seed \(the data draw: .*\) must be an int >= 0, got {re.escape(repr(seed))}"):
        D.load("synthetic", n_samples=100, seed=seed)


def test_check_params_ok(tmp_path):
    got = paths.check_params(dataset="synthetic", source="video", target="imu", lam=0.0, epochs=2, seeds=[0, 1],
                             resume=True, redo=True)
    assert got == {"data_root": None, "modalities": ("video", "imu"), "split": "id", "cv": False, "fold": None,
                   "split_name": "id"}
    got = paths.check_params(dataset="cough", data_root=str(tmp_path), source="audio", target="imu", preset="paper")
    assert got["data_root"] == tmp_path


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dataset": "mnist"}, ValueError, "unknown dataset 'mnist'"),
    ({"dataset": "synthetic", "split": "random"}, ValueError, "split must be 'id'"),
    ({"dataset": "synthetic", "split": "group_kfold"}, ValueError, r"say how many folds"),
    ({"dataset": "synthetic", "split": ["group_kfold", 1]}, ValueError, "int k >= 2"),
    ({"dataset": "synthetic", "split": ("group_kfold", 2.5)}, ValueError, "int k >= 2"),
    ({"dataset": "synthetic", "split": ["loso", 3]}, ValueError, "split must be 'id'"),
    ({"dataset": "synthetic", "split": "ood", "fold": 1}, ValueError, "only applies to a cross-validation split"),
    ({"dataset": "synthetic", "split": "loso", "fold": -1}, ValueError, "fold must be an int >= 0"),
    ({"dataset": "synthetic", "split": "loso", "fold": True}, ValueError, "fold must be an int >= 0"),
    ({"dataset": "synthetic", "data_root": "/data"}, ValueError, "takes no data_root"),
    ({"dataset": "uestc"}, ValueError, "needs data_root"),
    ({"dataset": "uestc", "data_root": "/no/such/folder"}, FileNotFoundError, "not a folder"),
    ({"dataset": "synthetic", "source": "lidar", "target": "imu"}, ValueError, "unknown modality 'lidar'"),
    ({"dataset": "synthetic", "source": "imu", "target": "imu"}, ValueError, "both 'imu'"),
    ({"dataset": "synthetic", "lam": -0.1}, ValueError, "lam must be a finite number >= 0"),
    ({"dataset": "synthetic", "lam": math.nan}, ValueError, "lam must be"),
    ({"dataset": "synthetic", "lams": [1.0, -1.0]}, ValueError, "every value of lams"),
    ({"dataset": "synthetic", "lams": []}, ValueError, "lams is empty"),
    ({"dataset": "synthetic", "lams": 1.0}, ValueError, r"lams must be a list, .*got 1.0: for one value write \[1.0\]"),
    ({"dataset": "synthetic", "seeds": 3}, ValueError, r"seeds must be a list, .*got 3: for one value write \[3\]"),
    ({"dataset": "synthetic", "seeds": "012"}, ValueError, "seeds must be a list"),
    # an empty seed list would train nothing and write an empty results table, as if it had run
    ({"dataset": "synthetic", "seeds": []}, ValueError, r"^seeds is empty: give at least one seed"),
    ({"dataset": "synthetic", "preset": "huge"}, ValueError, "unknown preset 'huge'"),
    ({"dataset": "synthetic", "preset": "paper", "target": "imu"}, ValueError, "is Table I's row of the paper's datasets"),
    ({"dataset": "synthetic", "epochs": 0}, ValueError, "epochs must be None"),
    ({"dataset": "synthetic", "source_epochs": 1.5}, ValueError, "source_epochs must be None"),
    ({"dataset": "synthetic", "seeds": [0, -1]}, ValueError, "seeds must be ints"),
    ({"dataset": "synthetic", "device": "tpu"}, ValueError, "device must be"),
    ({"dataset": "synthetic", "resume": "yes"}, ValueError, "resume must be True or False, got 'yes'"),
    ({"dataset": "synthetic", "redo": 1}, ValueError, "redo must be True or False, got 1"),
])
def test_check_params_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        paths.check_params(**kwargs)


@pytest.mark.parametrize("name, said", [("wrist/acc", "holds '/'"), ("wrist\\acc", f"holds {chr(92)!r}"),
                                        ("../acc", "holds '/'"), (" ", "starts or ends with a space")])
def test_check_params_refuses_a_modality_name_that_is_no_file_name_part(tmp_path, monkeypatch, name, said):
    """An arrays file's own modality names go into checkpoint and results file names: a '/' in one
    put the source's checkpoint in a sub-folder and crashed results_stem after the training. save_arrays
    refuses such names now (modalities.check_name); a file saved before it did is stopped by the
    validation cell, naming the modality, by the same rule."""
    import numpy as np

    import dcatkit.modalities as M
    from dcatkit.data import save_arrays

    rng = np.random.default_rng(0)
    arrays = {name: rng.normal(size=(12, 20, 3)).astype("float32"), "gyro": rng.normal(size=(12, 20, 3)).astype("float32")}
    kw = dict(groups="samples", kinds={name: "timeseries", "gyro": "timeseries"})
    with pytest.raises(ValueError, match=re.escape(f"{name!r} cannot name a modality: it {said}")):
        save_arrays(tmp_path / "w.npz", arrays, rng.integers(0, 2, 12), **kw)
    with monkeypatch.context() as old:                     # a file of an older dcatkit, which took the name
        old.setattr("dcatkit.data.splits.check_usable_name", M.check_name)
        f = save_arrays(tmp_path / "w.npz", arrays, rng.integers(0, 2, 12), **kw)
    with pytest.raises(ValueError, match=re.escape(f"{name!r} cannot name a modality: it {said}") + ".*it becomes "
                                         "part of checkpoint and results file names"):
        paths.check_params(dataset="arrays", data_root=str(f), source=name, target="gyro")
    assert paths.check_params(dataset="arrays", data_root=str(f), source="gyro")["modalities"] == ("gyro",)


def test_check_params_refuses_a_device_this_machine_lacks(monkeypatch):
    """device='cuda' on a machine without CUDA failed after the data was loaded: now in the validation
    cell (runtime.resolve_device), as does a cuda:N past the machine's GPUs."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0", "cudaXYZ"):
        with pytest.raises(ValueError, match=rf"device={device!r}: device {device!r} asked for but CUDA is not "
                                             "available"):
            paths.check_params(dataset="synthetic", device=device)
    paths.check_params(dataset="synthetic", device="cpu")
    paths.check_params(dataset="synthetic", device="auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)             # one GPU (mocked)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    paths.check_params(dataset="synthetic", device="cuda:0")
    with pytest.raises(ValueError, match=r"device='cuda:1': this machine has 1 CUDA device\(s\), numbered 0 \.\. 0"):
        paths.check_params(dataset="synthetic", device="cuda:1")


def test_empty_paths_are_refused_not_taken_for_the_repository_root():
    """resolve('') is the repository root: out_dir='' wrote results and checkpoints among the
    repository's files, figures_dir='' figures there, data_root='' took the repository for a dataset."""
    with pytest.raises(ValueError, match=r"out_dir is an empty string \(''\)"):
        paths.out_path("", "03_transfer")
    with pytest.raises(ValueError, match=r"out_dir is an empty string"):
        paths.checkpoint_path("  ", "source-video", seed=0)
    with pytest.raises(ValueError, match=r"figures_dir is an empty string"):
        paths.figures_path("", "outputs")
    with pytest.raises(ValueError, match=r"data_root is an empty string .*e\.g\. data_root='~/data/uestc'"):
        paths.check_params(dataset="uestc", data_root="")


def test_check_params_modality_not_in_dataset(tmp_path):
    with pytest.raises(ValueError, match=r"dataset 'uestc' has modalities \('imu', 'video'\), not 'audio'"):
        paths.check_params(dataset="uestc", data_root=str(tmp_path), source="audio", target="imu")


@pytest.mark.parametrize("kwargs, match", [
    ({"n_samples": 0}, "n_samples must be a positive int"),
    ({"n_samples": 100.0}, "n_samples must be a positive int"),
    ({"sizes": []}, "sizes must be a non-empty list"),
    ({"sizes": 300}, "sizes must be a non-empty list"),
    ({"sizes": [300, -1]}, "every value of sizes must be a positive int"),
    ({"sizes": [300, 300]}, "lists a size twice"),
    ({"methods": []}, "methods must be a non-empty list"),
    ({"methods": "dcat"}, "methods must be a non-empty list"),
    ({"methods": ["none", "dcat", "dcat"]}, "lists a method twice"),
    ({"methods": ["none", "distill"]}, "unknown transfer method 'distill'"),
    ({"methods": ["none+dcat"]}, "a combination needs distinct objectives"),
    ({"regimes": ["headroom", "easy"]}, "unknown regime 'easy'"),
    ({"regimes": []}, "regimes must be a non-empty list"),
])
def test_check_params_grid_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paths.check_params(dataset="synthetic", **kwargs)


def test_check_params_grid_ok(tmp_path):
    got = paths.check_params(dataset="synthetic", n_samples=1000, sizes=[300, 1000], regimes=["headroom", "ambiguous"],
                             methods=["none", "dcat", "kd", "fitnet", "contrastive", "dcat+kd"])
    assert {k: got[k] for k in ("data_root", "modalities", "split")} == {"data_root": None, "modalities": (),
                                                                          "split": "id"}
    with pytest.raises(ValueError, match="regimes are settings of the simulator"):
        paths.check_params(dataset="uestc", data_root=str(tmp_path), regimes=["headroom"])



@pytest.mark.parametrize("split, fold, want", [
    ("id", 0, {"split": "id", "cv": False, "fold": None, "split_name": "id"}),
    ("ood", 0, {"split": "ood", "cv": False, "fold": None, "split_name": "ood"}),
    ("loso", 3, {"split": "loso", "cv": True, "fold": 3, "split_name": "loso-fold3"}),
    (["group_kfold", 5], 0, {"split": ("group_kfold", 5), "cv": True, "fold": 0, "split_name": "group_kfold5-fold0"}),
    (("group_kfold", 2), 1, {"split": ("group_kfold", 2), "cv": True, "fold": 1, "split_name": "group_kfold2-fold1"}),
])
def test_check_split_accepts_cross_validation(split, fold, want):
    """loso and group_kfold (list from papermill -y, or tuple) are accepted; id / ood keep their
    names, so checkpoint names of existing id / ood runs do not change."""
    assert paths.check_split(split, fold) == want
    got = paths.check_params(dataset="synthetic", split=split, fold=fold, source="video", target="imu")
    assert {k: got[k] for k in want} == want


def test_check_split_takes_the_published_lists_for_uestc_only(tmp_path):
    from dcatkit.__main__ import _split

    want = {"split": "lists", "cv": False, "fold": None, "split_name": "lists"}
    assert paths.check_split("lists") == want and _split("lists") == "lists"        # notebooks and the CLI
    got = paths.check_params(dataset="uestc", data_root=str(tmp_path), split="lists")
    assert {k: got[k] for k in want} == want
    with pytest.raises(ValueError, match="only UESTC-MMEA-CL ships them .*; dataset 'cough' has none"):
        paths.check_params(dataset="cough", data_root=str(tmp_path), split="lists")
    with pytest.raises(ValueError, match="fold=1 only applies to a cross-validation split"):
        paths.check_split("lists", 1)


def test_check_split_names_differ_per_fold():
    names = {paths.check_split("loso", k)["split_name"] for k in range(4)}
    assert len(names) == 4                         # one checkpoint name per fold: folds never collide


def test_load_splits_picks_the_fold():
    """runs.load_splits returns fold `fold` of a cross-validation split (its test subjects are the
    fold's held-out ones), and a clear error for a fold the data does not have."""
    from dcatkit import runs
    from dcatkit.data import load

    checked = paths.check_params(dataset="synthetic", split=["group_kfold", 2], fold=1, modalities=["imu"])
    got = runs.load_splits("synthetic", checked, 0, {"n_samples": 60}, verbose=False)
    want = load("synthetic", split=("group_kfold", 2), modalities=("imu",), seed=0, n_samples=60)[1]
    assert sorted(set(got.test.subjects.tolist())) == sorted(set(want.test.subjects.tolist()))
    assert set(got.test.subjects.tolist()).isdisjoint(got.train.subjects.tolist())
    assert runs.n_folds("synthetic", checked, 0, {"n_samples": 60}) == 2
    bad = paths.check_params(dataset="synthetic", split=["group_kfold", 2], fold=2, modalities=["imu"])
    with pytest.raises(ValueError, match=r"has 2 folds on this data: fold must be 0 \.\. 1, got 2"):
        runs.load_splits("synthetic", bad, 0, {"n_samples": 60}, verbose=False)


def test_figures_path(tmp_path, monkeypatch):
    """None -> <out_dir>/figures (a sweep never writes the committed figures/), unless
    $DCATKIT_FIGURES_DIR (set by `make notebooks` only); an explicit folder wins."""
    monkeypatch.delenv("DCATKIT_FIGURES_DIR", raising=False)
    assert paths.figures_path(None, tmp_path / "out") == tmp_path / "out" / "figures"
    assert (tmp_path / "out" / "figures").is_dir()
    assert paths.figures_path(tmp_path / "f", tmp_path / "out") == tmp_path / "f"
    monkeypatch.setenv("DCATKIT_FIGURES_DIR", str(tmp_path / "committed"))
    assert paths.figures_path(None, tmp_path / "out") == tmp_path / "committed"
    assert paths.figures_path(tmp_path / "f", tmp_path / "out") == tmp_path / "f"


def test_notebook_checkpoints_are_keyed_on_presets_and_simulator(tmp_path, monkeypatch):
    """``runs.data_key`` puts the presets' content and the simulator's fingerprint into the
    notebooks' checkpoint names: a model trained before a preset or simulator change is not
    found under the new name (notebook 05 once read back an OOD source trained by older code
    under an unchanged name)."""
    from dataclasses import replace

    from dcatkit import presets, runs
    from dcatkit.data import synthetic

    def ck(**kw):
        key = runs.data_key("synthetic", "ood", 0, {**kw}, "synthetic", "video", "imu")
        return paths.checkpoint_path(tmp_path, "source-video", **key, epochs=6, seed=0)

    base = ck()
    assert base == ck() and base != ck(regime="ambiguous")
    with monkeypatch.context() as m:
        m.setitem(presets.SYNTHETIC_BY_KIND, "video", replace(presets.SYNTHETIC_BY_KIND["video"], lr=0.5))
        assert ck() != base
    sp = D.load("synthetic", n_samples=40, seed=0, ratios=(0.6, 0.2, 0.2))    # stands in for a real dataset
    real = runs.data_key("uestc", "id", 0, {}, "uestc", "video", "imu", splits=sp)
    with monkeypatch.context() as m:
        m.setitem(synthetic.HEADROOM_KNOBS, "imu_noise", 0.5)
        assert ck() != base
        assert runs.data_key("uestc", "id", 0, {}, "uestc", "video", "imu", splits=sp) == real   # no simulator
    assert ck() == base


def test_notebook_checkpoint_names_hold_the_split_the_data_seed_and_the_loader_options(tmp_path):
    """``runs.data_key`` records the split, the data seed and the loader options as given, so the
    notebooks' checkpoints of an OOD split, of another draw of the data or of another data size each
    get a name of their own: with any of them left out a model trained on other data would be read
    back as this run's."""
    from dcatkit import runs

    def key(split="id", data_seed=0, opts=None):
        return runs.data_key("synthetic", split, data_seed, opts or {}, "synthetic", "video", "imu")

    variants = {"default": key(), "ood": key(split="ood"), "data seed 1": key(data_seed=1),
                "200 samples": key(opts={"n_samples": 200})}
    assert (variants["ood"]["split"], variants["data seed 1"]["data_seed"], variants["200 samples"]["data"]) == \
        ("ood", 1, {"n_samples": 200})
    assert (variants["default"]["split"], variants["default"]["data_seed"], variants["default"]["data"]) == ("id", 0, {})
    names = {what: paths.checkpoint_path(tmp_path, "baseline-imu", **k, epochs=1, seed=0).name
             for what, k in variants.items()}
    assert len(set(names.values())) == 4, names


def test_notebook_checkpoints_on_a_real_dataset_follow_its_content():
    """On a real dataset the notebooks' checkpoint names hold the loaded data's content: another
    version of the data (one input value changed, as re-extracted frames or a fixed file give)
    gets another name, so its models are trained again, not read back; an identical copy gets
    the same name. Without the data the key is refused (it would name every version alike)."""
    import copy

    from dcatkit import runs

    sp = D.load("synthetic", n_samples=40, seed=0, ratios=(0.6, 0.2, 0.2))
    key = lambda s: runs.data_key("uestc", "id", 0, {}, "uestc", "video", "imu", splits=s)
    same = copy.deepcopy(sp)
    changed = copy.deepcopy(sp)
    changed.test.arrays["imu"][0, 0, 0] += 1.0
    assert key(same) == key(sp) and key(changed) != key(sp)
    with pytest.raises(ValueError, match="needs splits="):
        runs.data_key("uestc", "id", 0, {}, "uestc", "video", "imu")
    # the simulator's own key is its settings and fingerprint, with or without splits
    assert runs.data_key("synthetic", "id", 0, {}, "synthetic", "video", "imu", splits=sp) == \
        runs.data_key("synthetic", "id", 0, {}, "synthetic", "video", "imu")


def test_load_or_train_reads_an_existing_checkpoint_back_and_trains_only_without_one(tmp_path, capsys):
    """A notebook's second run reads the model its first run saved (no training); without a file
    it trains, and returns the trained Run's model."""
    import torch

    from dcatkit import runs
    from dcatkit.checkpoint import save_checkpoint
    from dcatkit.model import build_model
    from dcatkit.experiment import Run
    from helpers import TINY

    torch.manual_seed(0)
    saved = build_model("imu", 3, (6, 20), TINY["imu"])
    path = tmp_path / "m.pt"

    def no_training():
        raise AssertionError("trained though a checkpoint exists")

    assert runs.load_or_train(path, lambda: Run("r", "imu", saved, {}), verbose=False) is saved
    save_checkpoint(path, saved, {"modality": "imu"})
    got = runs.load_or_train(path, no_training, name="baseline")
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), saved.state_dict().values()))
    assert "baseline: loaded" in capsys.readouterr().out


def test_load_or_train_reads_a_transfer_model_back_only_for_the_source_it_was_trained_from(tmp_path, capsys):
    """Notebook 05's D-CAT model is read back only while the frozen source saved under its
    name is the one it records: a source trained again since (notebook 02 re-run on another
    device), a missing source, or a model recording none make it train again."""
    import torch

    from dcatkit import runs
    from dcatkit.checkpoint import save_checkpoint
    from dcatkit.experiment import Run, source_identity
    from dcatkit.model import build_model
    from helpers import TINY

    torch.manual_seed(0)
    src_a, src_b = (build_model("video", 3, (4, 3, 16, 16), TINY["video"]) for _ in range(2))
    ck_src, ck = tmp_path / "source.pt", tmp_path / "dcat.pt"
    save_checkpoint(ck_src, src_a, {"modality": "video"})
    saved = build_model("imu", 3, (6, 20), TINY["imu"])
    fresh = build_model("imu", 3, (6, 20), TINY["imu"])
    save_checkpoint(ck, saved, {"modality": "imu", "kind": "transfer", "source_identity": source_identity(src_a)})
    trained = []

    def train():
        trained.append(1)
        return Run("r", "imu", fresh, {})

    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert same(runs.load_or_train(ck, train, "D-CAT", source=ck_src), saved) and not trained
    assert "D-CAT: loaded" in capsys.readouterr().out

    save_checkpoint(ck_src, src_b, {"modality": "video"})           # the source trained again under its name
    assert runs.load_or_train(ck, train, "D-CAT", source=ck_src) is fresh and trained == [1]
    out = capsys.readouterr().out
    assert "trained from another frozen source" in out and "D-CAT: trained, saved to" in out

    ck_src.unlink()                                                  # no source saved: it is trained now
    assert runs.load_or_train(ck, train, "D-CAT", source=ck_src) is fresh and trained == [1, 1]
    out = capsys.readouterr().out
    assert "its frozen source" in out and "is missing" in out

    save_checkpoint(ck_src, src_a, {"modality": "video"})
    save_checkpoint(ck, saved, {"modality": "imu", "kind": "transfer"})       # written before sources were recorded
    assert runs.load_or_train(ck, train, "D-CAT", source=ck_src) is fresh and trained == [1, 1, 1]
    assert "does not record the frozen source" in capsys.readouterr().out
    save_checkpoint(ck, saved, {"modality": "imu"})                  # nor its kind: source= says it is a transfer
    assert runs.load_or_train(ck, train, "D-CAT", source=ck_src) is fresh and trained == [1, 1, 1, 1]
    assert "does not record the frozen source" in capsys.readouterr().out
    # without source= (a baseline) the saved model is read back as before
    assert same(runs.load_or_train(ck, train, "baseline"), saved) and trained == [1, 1, 1, 1]


def test_a_change_of_the_ambiguous_simulator_renames_the_ambiguous_regimes_checkpoints(tmp_path, monkeypatch):
    """The setup fingerprint draws the regime the data options name: a model trained on the
    'ambiguous' simulator before that simulator changed is not read back as current (and the
    default regime's names stay, since its simulator did not change)."""
    from dcatkit import runs
    from dcatkit.data import synthetic

    def ck(**kw):
        key = runs.data_key("synthetic", "id", 0, {**kw}, "synthetic", "video", "imu")
        return paths.checkpoint_path(tmp_path, "source-video", **key, epochs=6, seed=0)

    base, amb = ck(), ck(regime="ambiguous")
    monkeypatch.setitem(synthetic._MOTION, "drinking", (0.8, 1, 0.95))    # only the ambiguous regime reads it
    assert ck(regime="ambiguous") != amb and ck() == base
