"""Provenance of models and results, and load_source's leakage and class checks (issue 11, §1)."""
import hashlib
import subprocess
import warnings
from pathlib import Path

import pytest
import torch

from dcatkit import provenance
from dcatkit.data import load
from dcatkit.experiment import Run, load_source, train_transfer, train_unimodal
from dcatkit.model import build_model
from dcatkit.provenance import SourceMismatch
from dcatkit.train import load_checkpoint, resolve_device, seed_everything
from helpers import TINY

DATA = dict(n_samples=64, frame_size=16, n_frames=4, duration=1.0, modalities=("imu", "video"))


def data(split="id", seed=0):
    return load("synthetic", split=split, seed=seed, **DATA)


@pytest.fixture(scope="module")
def id0():
    return data("id", 0)


@pytest.fixture(scope="module")
def source(id0, tmp_path_factory):
    """A video source trained on the ID split with data seed 0, and its checkpoint."""
    path = tmp_path_factory.mktemp("prov") / "video.pt"
    run = train_unimodal(id0, "video", preset=TINY["video"], dataset="synthetic", seed=0, checkpoint=path,
                         progress=False)
    return run, path


def test_environment_record():
    def head():
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(provenance.__file__).parent,
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    provenance.git_commit.cache_clear()                # (cached per process)
    before = head()
    env = provenance.environment()
    assert env["torch"] == torch.__version__ and env["device"] in ("cpu", "cuda")
    assert set(env) >= {"dcatkit", "torch", "numpy", "python", "platform", "device", "device_name", "git_commit"}
    if before is not None:                            # running from a checkout (as `make test` does)
        assert env["git_commit"].split("-")[0] in (before, head())   # a commit may land meanwhile


def test_git_commit_never_fails(tmp_path, monkeypatch):
    assert provenance.git_commit(str(tmp_path)) is None                   # not a repository
    (tmp_path / "__init__.py").write_text("")
    subprocess.run(["git", "init", "-q", str(tmp_path / "outer")], check=True)
    inside = tmp_path / "outer" / "venv" / "dcatkit"                       # an untracked install inside a repo
    inside.mkdir(parents=True)
    (inside / "__init__.py").write_text("")
    assert provenance.git_commit(str(inside)) is None
    monkeypatch.setenv("PATH", "")                                         # no git at all
    assert provenance.git_commit(str(tmp_path / "outer")) is None


def test_checkpoint_records_provenance(id0, source):
    run, path = source
    model, meta = load_checkpoint(path)
    prov = meta["provenance"]
    assert model.provenance == prov == run.meta["provenance"] == run.model.provenance
    assert prov["dataset"] == "synthetic" and prov["modality"] == "video"
    assert prov["split"]["split"] == "id" and prov["data_seed"] == 0 == id0.report["split"]["seed"]
    assert prov["train_ids"] == list(id0.train.ids) and prov["n_train"] == len(id0.train)
    assert prov["train_ids_sha256"] == hashlib.sha256("\n".join(sorted(id0.train.ids)).encode()).hexdigest()
    assert prov["classes"] == id0.classes and prov["input_shape"] == list(id0.train.input_shape("video"))
    assert prov["sample_rates"] == pytest.approx(id0.train.sample_rates)
    assert prov["environment"]["torch"] == torch.__version__
    assert prov["environment"]["device"] == str(resolve_device("auto"))          # the device it trained on


def test_imu_model_records_its_normalisation(id0):
    run = train_unimodal(id0, "imu", preset=TINY["imu"].with_(epochs=1), seed=0, progress=False)
    mm = run.meta["provenance"]["imu_minmax"]
    assert mm["min"] == pytest.approx(id0.report["imu_minmax"]["min"])
    assert mm["max"] == pytest.approx(id0.report["imu_minmax"]["max"])


def _overlap(prov, splits):
    seen = set(prov["train_ids"])
    return sum(i in seen for i in splits.val.ids), sum(i in seen for i in splits.test.ids)


def test_leaky_source_refused_for_every_source_type(source):
    """The issue's reproduction: source on the ID split (data seed 0), target on OOD
    (data seed 1). Path, Run and in-memory model are refused, with the count."""
    run, path = source
    ood1 = data("ood", 1)
    n_val, n_test = _overlap(run.meta["provenance"], ood1)
    assert n_val + n_test > 0
    expected = rf"trained on {n_val + n_test} samples .*\({n_val} of {len(ood1.val)} validation, " \
               rf"{n_test} of {len(ood1.test)} test\).*Train the source on this run's training split"
    for src in (path, run, run.model, Run("bare run", "video", run.model, {})):
        with pytest.raises(SourceMismatch, match=expected):
            load_source(src, ood1, "imu")
    with pytest.raises(SourceMismatch, match="leakage"):
        train_transfer(ood1, path, "imu", preset=TINY["imu"], progress=False)


def test_same_split_source_is_accepted_silently(id0, source):
    run, path = source
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for src in (path, run, run.model):
            assert load_source(src, id0, "imu") is not None
    assert _overlap(run.meta["provenance"], id0) == (0, 0)


def test_classes_must_match(id0, source):
    run, _ = source
    seed_everything(0)
    five = build_model("video", 5, id0.train.input_shape("video"), TINY["video"])    # no provenance
    with pytest.raises(SourceMismatch, match="5 classes but the data has 8"):
        load_source(five, id0, "imu")
    renamed = build_model("video", 8, id0.train.input_shape("video"), TINY["video"])
    renamed.provenance = {**run.meta["provenance"], "classes": list(reversed(id0.classes))}
    with pytest.raises(SourceMismatch, match="do not match"):
        load_source(renamed, id0, "imu")
    with pytest.raises(SourceMismatch, match="do not match"):
        load_source(Run("r", "video", renamed, {}), id0, "imu")


def test_source_without_provenance_warns(id0):
    seed_everything(0)
    bare = build_model("video", 8, id0.train.input_shape("video"), TINY["video"])
    with pytest.warns(UserWarning, match="cannot check that it never saw"):
        assert load_source(bare, id0, "imu") is bare


def test_other_input_shape_refused(id0):
    seed_everything(0)
    small = build_model("video", 8, (4, 3, 8, 8), TINY["video"])
    with pytest.raises(SourceMismatch, match=r"inputs of shape \[4, 3, 8, 8\]"):
        load_source(small, id0, "imu")


def test_training_refuses_leaky_splits():
    """Splits built by hand go through the same leakage check as the loaders' before any training."""
    from dcatkit.data.dataset import Splits
    from dcatkit.experiment import train_transfer, train_unimodal
    from helpers import TINY, tiny_splits
    sp = tiny_splits(48, modalities=("imu", "video"))
    leaky = Splits(sp.train, sp.val, sp.train.subset([0, 1, 2]), {})   # 3 training recordings in test
    with pytest.raises(ValueError, match="3 recording"):
        train_unimodal(leaky, "imu", preset=TINY["imu"], epochs=1, progress=False)
    with pytest.raises(ValueError, match="3 recording"):
        train_transfer(leaky, object(), "imu", preset=TINY["imu"], epochs=1, progress=False)
