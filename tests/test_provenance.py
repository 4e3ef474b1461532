"""Provenance of models and results, and load_source's leakage and class checks (issue 11, §1)."""
import hashlib
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from dcatkit import provenance
from dcatkit.data import load
from dcatkit.data.dataset import Splits
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
    pkg = Path(provenance.__file__).parent

    def git(*args):                                    # as independent of provenance.git_commit as can be
        try:
            r = subprocess.run(["git", "-C", str(pkg), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):   # git not installed
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    provenance.git_commit.cache_clear()                # (cached per process)
    tracked = git("ls-files", "--error-unmatch", "__init__.py") is not None   # dcatkit in a checkout
    before = git("rev-parse", "HEAD") if tracked else None
    env = provenance.environment()
    assert env["torch"] == torch.__version__ and env["device"] in ("cpu", "cuda")
    assert set(env) >= {"dcatkit", "torch", "numpy", "python", "platform", "device", "device_name", "git_commit",
                        "cpu", "cpu_capability", "threads"}
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()     # the kernels torch picks
    assert env["threads"] == torch.get_num_threads()
    assert env["cpu"] is None or isinstance(env["cpu"], str)
    n = torch.get_num_threads()                                                 # another thread count is seen
    torch.set_num_threads(1 if n > 1 else 2)
    try:
        assert provenance.environment()["threads"] == torch.get_num_threads() != n
    finally:
        torch.set_num_threads(n)
    if before is None:       # a copy without .git (the GPU machine's), no git, or an install outside one
        assert env["git_commit"] is None
    else:                    # running from a checkout (as `make test` does)
        assert env["git_commit"].split("-")[0] in (before, git("rev-parse", "HEAD"))   # a commit may land meanwhile


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
    assert id0.report["imu_minmax"] and prov["imu_minmax"] is None      # the IMU scaling is no video model's
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
    """A source trained on the ID split of data seed 0 reused for the OOD split of the *same*
    draw (seed 0) saw samples that run evaluates on: path, Run and in-memory model are
    refused, with the count."""
    run, path = source
    ood0 = data("ood", 0)
    n_val, n_test = _overlap(run.meta["provenance"], ood0)
    assert n_val + n_test > 0
    expected = rf"trained on {n_val + n_test} samples .*\({n_val} of {len(ood0.val)} validation, " \
               rf"{n_test} of {len(ood0.test)} test\).*Train the source on this run's training split"
    for src in (path, run, run.model, Run("bare run", "video", run.model, {})):
        with pytest.raises(SourceMismatch, match=expected):
            load_source(src, ood0, "imu")
    with pytest.raises(SourceMismatch, match="leakage"):
        train_transfer(ood0, path, "imu", preset=TINY["imu"], progress=False)


def test_another_draw_of_the_simulator_is_accepted_and_said_so(source):
    """The issue's false alarm: a source from data seed 0 used for a data-seed-1 target was
    refused ('trained on 33 samples that this run evaluates on') though the draws share no
    sample. Now the ids name the draw: accepted, with a message saying it is another draw."""
    run, path = source
    ood1 = data("ood", 1)
    assert _overlap(run.meta["provenance"], ood1) == (0, 0)
    assert not set(ood1.train.ids + ood1.val.ids + ood1.test.ids) & set(run.meta["provenance"]["train_ids"])
    with pytest.warns(UserWarning, match=r"another draw of the same 'synthetic' data .*data seed 0\), "
                                         rf"{len(run.meta['provenance']['train_ids'])} training samples; this run: "
                                         rf".*data seed 1\), {len(ood1.train)} training samples"):
        model = load_source(path, ood1, "imu")
    assert model.source_check["source_check"] == "another draw"


def test_the_same_draw_loaded_with_other_modalities_is_not_called_another_draw(source):
    """The fingerprint hashes every loaded modality: the source's own draw loaded with audio too
    (as the CLI loads it) read as 'another draw ... never seen this run's data'. Its training ids
    are this run's: said as such; a real other draw is still 'another draw'."""
    _, path = source
    wider = load("synthetic", split="id", seed=0, **{**DATA, "modalities": ("imu", "video", "audio")})
    with pytest.warns(UserWarning, match=r"trained on this run's training samples \(the same ids\) but its data "
                                         r"fingerprint differs .*other modalities, or its files changed"):
        model = load_source(path, wider, "imu")
    assert model.source_check["source_check"] == "same samples"


def test_source_that_chose_its_epoch_on_the_target_test_samples_is_refused(id0, source):
    """Hole 2: the source's validation ids were not recorded. A source whose validation part is
    this run's test part (its best epoch chosen on them) is refused."""
    run, _ = source
    prov = run.meta["provenance"]
    assert prov["val_ids"] == list(id0.val.ids) and prov["n_val"] == len(id0.val)
    swapped = Splits(id0.train, id0.test, id0.val, id0.report)       # this run tests on the source's val part
    with pytest.raises(SourceMismatch, match=rf"best epoch on {len(id0.val)} of this run's {len(id0.val)} test"):
        load_source(run, swapped, "imu")


def test_source_without_provenance_is_refused_unless_trusted_and_the_run_records_it(id0, source, tmp_path):
    """Hole 1: a checkpoint without provenance (as an older version wrote it) passed with a
    warning even when it leaked. Now it is refused, naming the override; the override is
    recorded in the run (meta, checkpoint) and on the command line."""
    run, path = source
    old = tmp_path / "old.pt"
    payload = torch.load(path, weights_only=True)
    payload["meta"].pop("provenance")
    torch.save(payload, old)
    for src in (old, build_model("video", 8, id0.train.input_shape("video"), TINY["video"])):
        with pytest.raises(SourceMismatch, match=r"no provenance.*trust_source=True.*--trust-source"):
            load_source(src, id0, "imu")
    incomplete = {k: v for k, v in run.meta["provenance"].items() if k not in ("val_ids", "data_fingerprint")}
    bare = build_model("video", 8, id0.train.input_shape("video"), TINY["video"])
    bare.provenance = incomplete
    with pytest.raises(SourceMismatch, match=r"incomplete provenance \(no val_ids, data_fingerprint"):
        load_source(bare, id0, "imu")
    with pytest.warns(UserWarning, match="trust_source=True"):
        t = train_transfer(id0, old, "imu", preset=TINY["imu"], epochs=1, progress=False, trust_source=True,
                           checkpoint=tmp_path / "t.pt")
    assert t.meta["trust_source"] is True
    assert t.meta["source_checks"] == [{"source_check": "trusted without provenance", "trust_source": True}]
    assert load_checkpoint(tmp_path / "t.pt")[1]["trust_source"] is True
    from dcatkit.__main__ import main
    args = ["transfer", "--source-ckpt", str(old), "--target", "imu", "--epochs", "1", "--n-samples", "64",
            "--out", str(tmp_path / "cli.pt"), "--device", "cpu"]
    assert main(args) == 2                                                # refused: exit status 2


def test_every_timeseries_modality_has_its_scaling_compared():
    """Scaling was compared only for a modality named 'imu'."""
    import numpy as np
    from dcatkit.data import from_arrays

    rng = np.random.default_rng(0)
    acc = rng.normal(0, 1, (40, 2, 16)).astype(np.float32)
    labels = np.arange(40) % 2
    kinds = {"acc": "timeseries", "gyro": "timeseries"}
    a = from_arrays({"acc": acc, "gyro": acc[:, :1]}, labels, groups="samples", kinds=kinds, seed=0)
    b = from_arrays({"acc": acc * 3, "gyro": acc[:, :1]}, labels, groups="samples", kinds=kinds, seed=0)
    prov = provenance.record(a.train, "acc", a.report, val=a.val)
    with pytest.warns(UserWarning, match="acc inputs were min-max scaled with other per-channel statistics"):
        provenance.warn_if_inputs_differ(prov, b, "acc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        provenance.warn_if_inputs_differ(prov, a, "acc")


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


def test_check_source_refuses_a_full_record_of_other_classes(id0, source):
    """check_source alone (load_source reads the names from the checkpoint's meta first): a full
    record of this run's classes in another order, or of none, is refused; the record as it is fits."""
    prov = source[0].meta["provenance"]
    assert provenance.check_source(prov, id0)["shared_val"] == 0
    with pytest.raises(SourceMismatch, match=r"the source has 8 classes \['open_close_door'.* but the data has 8 "
                                             r"\['drinking'.*same names, same order needed"):
        provenance.check_source({**prov, "classes": list(reversed(id0.classes))}, id0)
    for none in (None, []):                  # a full record naming no classes: said so, with what it needs
        with pytest.raises(SourceMismatch, match=rf"the source's provenance record names no classes \(its 'classes' "
                                                 rf"is {re.escape(repr(none))}\), so nothing says it has this run's 8 "
                                                 r"classes \['drinking'.*\(same names, same order needed\): use a "
                                                 r"source trained with dcatkit on this data's classes"):
            provenance.check_source({**prov, "classes": none}, id0)


def test_source_without_provenance_is_used_only_when_trusted(id0):
    seed_everything(0)
    bare = build_model("video", 8, id0.train.input_shape("video"), TINY["video"])
    with pytest.warns(UserWarning, match="cannot check that it never saw|used because trust_source=True"):
        assert load_source(bare, id0, "imu", trust_source=True) is bare


def test_a_checkpoint_of_another_modality_than_the_named_source_is_refused(id0, source):
    """compare(source="audio", source_checkpoint=<a video model>) evaluated the video model on the
    audio inputs and reported it as the audio source (two timeseries sensors: a number, no error)."""
    from dcatkit import runs
    from dcatkit.experiment import compare
    _, path = source
    with pytest.raises(SourceMismatch, match=r"video.pt is a 'video' model, not a 'audio' one: it would read the "
                                             r"'audio' inputs as 'video' ones.*give the audio source's checkpoint "
                                             r"\(or source='video'\)"):
        load_source(path, id0, "imu", source_modality="audio")
    with pytest.raises(SourceMismatch, match="not a 'audio' one"):
        compare(id0, source="audio", target="imu", source_checkpoint=path, progress=False)
    with pytest.raises(SourceMismatch, match="not a 'audio' one"):
        runs.source_run(id0, "audio", "imu", path, verbose=False)
    assert load_source(path, id0, "imu", source_modality="video") is not None


def test_other_input_shape_refused(id0):
    seed_everything(0)
    small = build_model("video", 8, (4, 3, 8, 8), TINY["video"])
    here = re.escape(str(list(id0.train.input_shape("video"))))
    with pytest.raises(SourceMismatch, match=r"the source \('video' model\) takes inputs of shape \[4, 3, 8, 8\] but "
                                             rf"the data's 'video' inputs are {here}: load the data with the source's"):
        load_source(small, id0, "imu")
    # the same rule (provenance.check_input_shape) in training, with training's advice
    from dcatkit import train
    with pytest.raises(SourceMismatch, match=r"the model \('video' model\) takes inputs of shape \[4, 3, 8, 8\] but "
                                             rf"the data's 'video' inputs are {here}: give each model the modality"):
        train.fit(small, id0.train, id0.val, preset=TINY["video"], progress=False)


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


def test_from_arrays_ids_are_given_or_content_hashes_and_a_subset_is_still_recognised():
    """Ids were positions: a source trained on a reordered copy or a subset of the same data was
    matched by position (wrong samples). Content ids follow the sample; the report says which."""
    import numpy as np
    from dcatkit.data import from_arrays
    from dcatkit.data.splits import content_ids

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (60, 2, 16)).astype(np.float32)
    y = np.arange(60) % 2
    a = from_arrays({"acc": x}, y, groups="samples", kinds={"acc": "timeseries"}, seed=0)
    assert a.report["id_source"] == "content" and all(i.startswith("sha256:") for i in a.train.ids)
    given = from_arrays({"acc": x}, y, ids=[f"w{i}" for i in range(60)], groups="samples", kinds={"acc": "timeseries"})
    assert given.report["id_source"] == "given" and given.train.ids[0].startswith("w")
    assert given.report["data_fingerprint"] == a.report["data_fingerprint"]        # the same content
    order = rng.permutation(60)[:50]                                              # reordered subset
    b = from_arrays({"acc": x[order]}, y[order], groups="samples", kinds={"acc": "timeseries"}, seed=3)
    assert b.report["data_fingerprint"] != a.report["data_fingerprint"]
    assert set(content_ids({"acc": x[order]})) <= set(content_ids({"acc": x}))
    prov = provenance.record(a.train, "acc", {**a.report, "dataset": None}, val=a.val)
    shared = set(a.train.ids) & set(b.val.ids + b.test.ids)
    assert shared                                                                  # the copy holds some
    with pytest.raises(SourceMismatch, match=rf"trained on {len(shared)} samples that this run evaluates on"):
        provenance.check_source(prov, b)
    twin = np.concatenate([x[:1], x[:1]])                                         # identical samples stay unique
    assert content_ids({"acc": twin}) == [content_ids({"acc": x[:1]})[0], content_ids({"acc": x[:1]})[0] + "~2"]


def test_ids_of_two_kinds_cannot_be_compared_so_the_source_is_refused():
    """A source trained with content ids and a target given its own ids (or the other way round)
    share no id even on the same samples: the overlap check found 0 and accepted a source that
    had seen most of the target's test samples."""
    import numpy as np
    from dcatkit.data import from_arrays

    x = np.random.default_rng(1).normal(0, 1, (60, 2, 16)).astype(np.float32)
    y, kinds = np.arange(60) % 2, {"acc": "timeseries"}
    a = from_arrays({"acc": x}, y, groups="samples", kinds=kinds, seed=0)                  # content ids
    given = from_arrays({"acc": x}, y, ids=[f"w{i}" for i in range(60)], groups="samples", kinds=kinds, seed=5)
    prov = provenance.record(a.train, "acc", {**a.report, "dataset": None}, val=a.val)
    with pytest.raises(SourceMismatch, match="ids derived from the content.*ids given"):
        provenance.check_source(prov, given)
    with pytest.warns(UserWarning, match="not checked"):
        assert provenance.check_source(prov, given, trust_source=True)["trust_source"] is True
    assert provenance.check_source(prov, a)["source_check"] == "same data"                # one kind of ids: checked


def test_ids_hash_is_the_sha256_of_the_sorted_ids_one_per_line():
    """The training-set hash names a set: the same ids in another order (a loader that lists
    recordings in another order) give the same hash, the sha256 of the sorted ids joined by
    newlines."""
    want = hashlib.sha256(b"a1\nb2\nc3").hexdigest()
    assert provenance.ids_hash(["c3", "a1", "b2"]) == provenance.ids_hash(["a1", "b2", "c3"]) == want
    assert provenance.ids_hash(["a1", "b2"]) != want


def test_a_source_from_another_dataset_is_said_to_be_other_data_not_another_draw():
    """Only a simulated source whose record names this run's dataset is "another draw" (the
    simulator's ids name their draw); a real dataset of the same name sharing no id is "same
    dataset, no shared id" (loaded with other settings, its recordings can have other ids); one
    from other data (another dataset name, or none) is "other data". Only the simulator's other
    draw is said to share no data: the others say what was counted, that no sample id is shared,
    and that this does not rule out an overlap."""
    import numpy as np
    from dcatkit.data import from_arrays

    rng = np.random.default_rng(0)
    labels = np.arange(40) % 2
    a = from_arrays({"acc": rng.normal(0, 1, (40, 2, 16)).astype(np.float32)}, labels, groups="samples",
                    kinds={"acc": "timeseries"}, seed=0)
    b = from_arrays({"acc": rng.normal(0, 1, (40, 2, 16)).astype(np.float32)}, labels, groups="samples",
                    kinds={"acc": "timeseries"}, seed=0)
    prov = provenance.record(a.train, "acc", a.report, val=a.val)
    assert prov["data_fingerprint"] != b.report["data_fingerprint"]
    for theirs, ours, want in (("cough", "uestc", "other data"), (None, "uestc", "other data"),
                               ("uestc", None, "other data"), ("uestc", "uestc", "same dataset, no shared id"),
                               ("synthetic", "synthetic", "another draw")):
        here = Splits(b.train, b.val, b.test, {**b.report, "dataset": ours})
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = provenance.check_source({**prov, "dataset": theirs}, here)
        assert out["source_check"] == want and out["shared_target_train"] == 0
        msg = " ".join(str(x.message) for x in w)
        assert "no leakage" not in msg and "shares no sample id and no 'acc' input with this run" in msg
        assert ("another draw of the same 'synthetic'" in msg) == (want == "another draw")
        assert ("cannot be ruled out" in msg) == (want != "another draw")
        assert ("the same 'uestc' dataset" in msg) == (want == "same dataset, no shared id")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
@pytest.mark.parametrize("git_env", [None, "GIT_GLOB_PATHSPECS", "GIT_NOGLOB_PATHSPECS", "GIT_LITERAL_PATHSPECS"])
def test_git_commit_of_a_checkout_with_changed_tracked_files_ends_in_dirty(tmp_path, monkeypatch, git_env):
    """The commit names the code only when no tracked file that runs was changed: a changed Python
    file anywhere in the checkout (the package's, or a script beside it) or pyproject.toml appends
    "-dirty"; an untracked file, an executed notebook or a results file does not (``make
    notebooks`` executes them in place, one after the other). The same under git's pathspec
    settings a user's environment may hold (``git_env``)."""
    if git_env:
        monkeypatch.setenv(git_env, "1")
    top = tmp_path / "repo"
    repo = top / "pkg"                                  # the package is a folder of the checkout
    (top / "notebooks").mkdir(parents=True)
    repo.mkdir()
    (repo / "sub").mkdir()
    files = {repo / "__init__.py": "x = 1\n", top / "notebooks" / "nb.ipynb": "{}", top / "notebooks" / "nb.py": "y = 1\n",
             top / "results.csv": "a\n1\n", top / "pyproject.toml": "[project]\n", repo / "sub" / "deep.py": "z = 1\n",
             top / "run.py": "w = 1\n"}
    for f, text in files.items():
        f.write_text(text)
    git = ["git", "-C", str(top), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()

    def commit_after(f=None, text=None):
        if f is not None:
            f.write_text(text)
        provenance.git_commit.cache_clear()
        got = provenance.git_commit(str(repo))
        if f in files:
            f.write_text(files[f])                      # back as committed
        return got

    assert commit_after() == head
    assert commit_after(repo / "notes.txt", "untracked") == head
    (repo / "notes.txt").unlink()
    assert commit_after(top / "notebooks" / "nb.ipynb", '{"executed": 1}') == head
    assert commit_after(top / "results.csv", "a\n2\n") == head
    assert commit_after(repo / "__init__.py", "x = 2\n") == head + "-dirty"
    assert commit_after(repo / "sub" / "deep.py", "z = 2\n") == head + "-dirty"          # a subfolder of the package
    assert commit_after(top / "run.py", "w = 2\n") == head + "-dirty"                    # the checkout's top
    assert commit_after(top / "notebooks" / "nb.py", "y = 2\n") == head + "-dirty"     # outside the package folder
    assert commit_after(top / "pyproject.toml", "[project]\nname = 'x'\n") == head + "-dirty"
    provenance.git_commit.cache_clear()


def test_another_sample_rate_is_warned_about_and_the_same_one_is_not():
    import numpy as np
    from dcatkit.data import from_arrays

    rng = np.random.default_rng(0)
    acc, labels = rng.normal(0, 1, (40, 2, 16)).astype(np.float32), np.arange(40) % 2
    a = from_arrays({"acc": acc}, labels, groups="samples", kinds={"acc": "timeseries"}, seed=0,
                    sample_rates={"acc": 50.0})
    b = from_arrays({"acc": acc}, labels, groups="samples", kinds={"acc": "timeseries"}, seed=0,
                    sample_rates={"acc": 100.0})
    prov = provenance.record(a.train, "acc", a.report, val=a.val)
    with pytest.warns(UserWarning, match="the source saw acc at 50.0 Hz, this run's data is at 100.0 Hz"):
        provenance.warn_if_inputs_differ(prov, b, "acc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        provenance.warn_if_inputs_differ(prov, a, "acc")


def test_a_trusted_source_without_a_full_record_still_needs_this_runs_classes(id0):
    """trust_source skips only the overlap check: a record without validation ids whose classes
    differ from this run's (or are in another order) is still refused."""
    prov = {"classes": list(reversed(id0.classes)), "train_ids": [], "val_ids": None, "data_fingerprint": None}
    with pytest.warns(UserWarning, match="incomplete provenance"), \
            pytest.raises(SourceMismatch, match=r"the source has 8 classes .* \(same names, same order needed\)"):
        provenance.check_source(prov, id0, trust_source=True)
    with pytest.warns(UserWarning, match="incomplete provenance"):
        out = provenance.check_source({**prov, "classes": list(id0.classes)}, id0, trust_source=True)
    assert out["source_check"] == "trusted with incomplete provenance"


def test_without_a_loader_fingerprint_the_record_names_the_ids_it_trained_and_chose_on():
    """A hand-built split has no data fingerprint: the record's stands for the training and
    validation ids the model saw (sha256 of them sorted, 24 hex digits)."""
    import numpy as np
    from dcatkit.data import from_arrays

    rng = np.random.default_rng(0)
    a = from_arrays({"acc": rng.normal(0, 1, (40, 2, 16)).astype(np.float32)}, np.arange(40) % 2,
                    groups="samples", kinds={"acc": "timeseries"}, seed=0)
    ids = sorted(map(str, list(a.train.ids) + list(a.val.ids)))
    want = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:24]
    assert provenance.record(a.train, "acc", {}, val=a.val)["data_fingerprint"] == want


def test_scaled_on_one_side_only_is_warned_about():
    import numpy as np
    from dcatkit.data import from_arrays

    rng = np.random.default_rng(0)
    a = from_arrays({"acc": rng.normal(0, 1, (40, 2, 16)).astype(np.float32)}, np.arange(40) % 2,
                    groups="samples", kinds={"acc": "timeseries"}, seed=0)
    prov = provenance.record(a.train, "acc", a.report, val=a.val)
    assert prov["normalization"]
    with pytest.warns(UserWarning, match="the source's acc inputs were not min-max scaled, this run's are"):
        provenance.warn_if_inputs_differ({**prov, "normalization": None}, a, "acc")


def _acc_gyro(n=60):
    import numpy as np

    rng = np.random.default_rng(0)
    acc = rng.normal(size=(n, 3, 16)).astype(np.float32)
    gyro = rng.normal(size=(n, 3, 16)).astype(np.float32)
    return acc, gyro, np.arange(n) % 3, np.arange(n)


def test_a_source_trained_on_fewer_modalities_of_the_same_samples_is_recognised():
    """from_arrays content ids hash every modality loaded: a source trained on {"acc"} and a target
    on {"acc", "gyro"} named the same samples by other ids, so the check counted no overlap and
    said 'It shares no sample with this run (no leakage)' while 14 of the target's 18 validation
    and test samples were in the source's training part. The record now keeps the content of the
    source's own modality, and the target's report each modality's: the overlap is counted."""
    import numpy as np
    from dcatkit.data import from_arrays

    acc, gyro, y, rec = _acc_gyro()
    kinds = {"acc": "timeseries", "gyro": "timeseries"}
    src = from_arrays({"acc": acc}, y, groups=rec, kinds={"acc": "timeseries"}, seed=0)
    prov = provenance.record(src.train, "acc", src.report, val=src.val)
    row = {i: int(g) for d in src for i, g in zip(d.ids, d.groups)}         # the acc id names its row (= group)
    trained = {row[i] for i in src.train.ids}
    tgt = from_arrays({"acc": acc, "gyro": gyro}, y, groups=rec, kinds=kinds, seed=1)
    assert not set(prov["train_ids"]) & set(tgt.train.ids + tgt.val.ids + tgt.test.ids)   # no id in common
    n_val, n_test = (sum(int(g) in trained for g in d.groups) for d in (tgt.val, tgt.test))
    assert n_val + n_test > 0
    with pytest.raises(SourceMismatch, match=rf"trained on {n_val + n_test} samples that this run evaluates on "
                                             rf"\({n_val} of {len(tgt.val)} validation, {n_test} of"):
        provenance.check_source(prov, tgt)
    same = from_arrays({"acc": acc, "gyro": gyro}, y, groups=rec, kinds=kinds, seed=0)   # the same split
    with pytest.warns(UserWarning, match=rf"trained on {len(same.train)} of this run's {len(same.train)} training "
                                         r"samples \(by sample id or by its 'acc' inputs"):
        out = provenance.check_source(prov, same)
    assert out["source_check"] == "same samples" and out["shared_target_train"] == len(same.train)
    # a record without the modality's content (an older one): nothing to compare by, and said so
    old = {k: v for k, v in prov.items() if k not in ("train_content", "val_content")}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert provenance.check_source(old, tgt)["source_check"] == "other data"
    msg = " ".join(str(x.message) for x in w)
    assert "shares no sample id with this run" in msg and "cannot be ruled out" in msg and "no leakage" not in msg
    assert repr(tgt.report["modality_content"]) == f"ModalityContent(acc, gyro: {len(acc)} samples)"
    assert np.isin(list(tgt.report["modality_content"]["acc"].values()), prov["train_content"]).sum() == len(trained)


def test_a_source_trained_on_more_or_fewer_of_the_same_samples_is_not_called_another_draw(tmp_path):
    """A source whose training ids are a superset or a subset of this run's (another window stride)
    went past the 'same samples' branch, which needed the very same set, to 'another draw ... It
    shares no sample with this run (no leakage), but it has never seen this run's data', though it
    trained on every one of this run's training samples. The shared ids are now counted and said,
    with the loader settings that differ (the record keeps the loader's preprocessing key)."""
    from fixtures_data import make_cough

    r = tmp_path / "cough"
    r.mkdir()
    make_cough(r, subjects=("005", "006", "007"))
    opts = dict(split="id", modalities=("imu",), seed=0, cache_dir=False, split_file=None, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = load("cough", r, stride_s=0.25, **opts)
        tgt = load("cough", r, **opts)
    prov = provenance.record(src.train, "imu", src.report, val=src.val)
    assert prov["preprocessing"] == src.report["preprocessing"] != tgt.report["preprocessing"]
    pre = rf"preprocessing {src.report['preprocessing'][:8]} vs {tgt.report['preprocessing'][:8]} here"
    shared = set(prov["train_ids"]) & set(tgt.train.ids)
    assert shared == set(tgt.train.ids) and len(prov["train_ids"]) > len(shared)      # a superset
    cases = [(prov, len(tgt.train)),                                                    # superset
             ({**prov, "train_ids": sorted(shared)[:5]}, 5)]                            # subset
    for p, n in cases:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = provenance.check_source(p, tgt)
        msg = " ".join(str(x.message) for x in w)
        assert out["source_check"] == "same samples" and out["shared_target_train"] == n
        assert re.search(rf"trained on {n} of this run's {len(tgt.train)} training samples \(by sample id; it "
                         rf"trained on {len(p['train_ids'])} samples\) and on none of its validation or test", msg)
        assert re.search(pre, msg) and "another draw" not in msg and "no leakage" not in msg


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_same_training_code_sees_only_the_files_that_train(tmp_path, monkeypatch):
    """Two commits train alike when the diff between them touches no package file but
    ``NOT_TRAINING`` (and not pyproject.toml): a commit that changed a notebook, the prose or
    ``explore.py`` reads its runs back without the "other code" line; one that changed a
    training module, a module in a subfolder or pyproject.toml does not, nor a dirty tree, nor a
    commit this checkout does not know."""
    top = tmp_path / "repo"
    pkg = top / "pkg"
    (pkg / "data").mkdir(parents=True)
    files = {pkg / "__init__.py": "x = 1\n", pkg / "train.py": "t = 1\n", pkg / "explore.py": "e = 1\n",
             pkg / "plots.py": "s = 1\n", pkg / "data" / "load.py": "d = 1\n", top / "README.md": "r\n",
             top / "nb.py": "n = 1\n", top / "pyproject.toml": "[project]\n"}
    git = ["git", "-C", str(top), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(top)], check=True)

    def commit(changes):
        for f, text in changes.items():
            f.write_text(text)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "c"], check=True)
        return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()

    base = commit(files)
    same = lambda a, b: provenance.same_training_code(a, b, str(pkg))   # noqa: E731
    shown = commit({pkg / "explore.py": "e = 2\n", pkg / "plots.py": "s = 2\n", top / "README.md": "r2\n",
                    top / "nb.py": "n = 2\n"})
    assert same(base, shown) and same(shown, base) and same(base, base)
    last = shown
    for f in (pkg / "train.py", pkg / "__init__.py", pkg / "data" / "load.py", top / "pyproject.toml"):
        before, last = last, commit({f: f.read_text() + "# changed\n"})       # one file changed in each
        assert not same(before, last), f
    assert not same(base, base + "-dirty") and not same(shown, "0" * 40)   # unknown which files; unknown commit
    now = {"dcatkit": "1", "git_commit": shown}
    real = provenance.same_training_code
    monkeypatch.setattr(provenance, "same_training_code", lambda a, b: real(a, b, str(pkg)))
    assert not provenance.other_code({"dcatkit": "1", "git_commit": base}, now)
    assert provenance.other_code({"dcatkit": "1", "git_commit": base}, {"dcatkit": "1", "git_commit": commit(
        {pkg / "train.py": "t = 3\n"})})
    assert provenance.other_code({"dcatkit": "0", "git_commit": base}, now)      # another version, same code


def test_training_imports_none_of_the_modules_that_only_show_runs(tmp_path):
    """``provenance.NOT_TRAINING`` names the modules whose change does not make a stored run
    "other code"'s: training a source, a baseline and D-CAT / KD runs through the sweep, as the
    notebooks do, in a fresh interpreter, imports none of them (a training module that started
    importing one would have to leave the list)."""
    script = f"""
import sys
from dcatkit.sweep import run_transfer_sweep
run_transfer_sweep({str(tmp_path)!r}, methods=["none", "dcat", "kd"], sizes=[80], seeds=[0], workers=0,
                   progress=False, epochs_source=1, epochs_target=1, data_options={{"frame_size": 16, "n_frames": 4}})
print(" ".join(sorted(m for m in sys.modules if m.startswith("dcatkit"))))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = set(r.stdout.strip().splitlines()[-1].split())
    assert "dcatkit.train" in loaded and "dcatkit.objectives" in loaded         # it did train
    shown = {"dcatkit." + f[:-3] for f in provenance.NOT_TRAINING}
    assert not shown & loaded, sorted(shown & loaded)


def test_leakage_between_two_folds_names_the_folds_and_the_cli_split():
    """A source trained on fold 0 of a cross-validation split, refused for fold 1 of the same
    split: the message named both as "split group_kfold (data seed 0)" (the same words for
    source and run) and told to train with `--split group_kfold`, which the CLI rejects
    (it takes group_kfold:K) and which lacks --fold."""
    import numpy as np
    from dcatkit.data import from_arrays

    rng = np.random.default_rng(0)
    n = 48
    subjects, groups = np.arange(n) // 8, [f"rec{i // 4}" for i in range(n)]       # 6 subjects, 2 recordings each
    folds = from_arrays({"acc": rng.normal(size=(n, 2, 8)).astype(np.float32)}, np.arange(n) % 2, subjects,
                        groups=groups, kinds={"acc": "timeseries"}, split=("group_kfold", 3), seed=0)
    prov = provenance.record(folds[0].train, "acc", folds[0].report, val=folds[0].val)
    with pytest.raises(SourceMismatch) as e:
        provenance.check_source(prov, folds[1])
    msg = str(e.value)
    assert "Source: dataset None, split group_kfold:3 fold 0 (data seed 0)" in msg
    assert "this run: dataset None, split group_kfold:3 fold 1 (data seed 0)" in msg
    assert "`python -m dcatkit train --split group_kfold:3 --fold 1 --data-seed 0 ...`" in msg
    loso = from_arrays({"acc": rng.normal(size=(n, 2, 8)).astype(np.float32)}, np.arange(n) % 2, subjects,
                       groups=groups, kinds={"acc": "timeseries"}, split="loso", seed=0)
    with pytest.raises(SourceMismatch, match=r"--split loso --fold 2 --data-seed 0 "):
        provenance.check_source(provenance.record(loso[0].train, "acc", loso[0].report, val=loso[0].val), loso[2])
