import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dcatkit.experiment import compare, load_source, train_transfer, train_unimodal
from dcatkit.model import build_model
from dcatkit.checkpoint import load_checkpoint, save_checkpoint
from dcatkit.frozen_source import LiveSource
from dcatkit.runtime import seed_everything
from dcatkit.train import evaluate, fit, fit_transfer
from helpers import TINY, new_imu_model, tiny_splits


@pytest.fixture(scope="module")
def splits():
    return tiny_splits(96, modalities=("imu", "video"))


@pytest.fixture(scope="module")
def video_source(splits, tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "video.pt"
    run = train_unimodal(splits, "video", preset=TINY["video"], seed=0, checkpoint=path, progress=False)
    return run, path


@pytest.fixture
def no_epochs(monkeypatch):
    """Any epoch that starts fails the test: what is refused must be refused before training."""
    import dcatkit.train as train_mod

    def no_training(*a, **k):
        raise AssertionError("an epoch ran before the bad argument was refused")

    monkeypatch.setattr(train_mod, "_train_epoch", no_training)


def test_tiny_overfit():
    """A tiny IMU model drives the training loss down on 16 samples."""
    sp = tiny_splits(48, modalities=("imu",))
    small = sp.train.subset(range(16))
    seed_everything(0)
    model = build_model("imu", 8, small.input_shape("imu"), TINY["imu"].with_(dropout=0.0))
    res = fit(model, small, small, preset=TINY["imu"].with_(dropout=0.0, lr=1e-2), epochs=60, progress=False)
    assert res.history["train_loss"].iloc[-1] < 0.1 * res.history["train_loss"].iloc[0]
    assert evaluate(res.model, small, "imu")["accuracy"] == 1.0


def test_seeded_reproducible(splits):
    a = train_unimodal(splits, "imu", preset=TINY["imu"], seed=3, progress=False)
    b = train_unimodal(splits, "imu", preset=TINY["imu"], seed=3, progress=False)
    c = train_unimodal(splits, "imu", preset=TINY["imu"], seed=4, progress=False)
    assert a.test["f1"] == b.test["f1"] and np.array_equal(a.test["confusion"], b.test["confusion"])
    assert a.history["train_loss"].tolist() == b.history["train_loss"].tolist()
    assert a.history["train_loss"].tolist() != c.history["train_loss"].tolist()


def test_history_and_best_epoch(splits):
    run = train_unimodal(splits, "imu", preset=TINY["imu"].with_(epochs=3), seed=0, progress=False)
    h = run.history
    assert list(h["epoch"]) == [1, 2, 3]
    assert {"train_loss", "train_ce", "val_accuracy", "val_precision", "val_recall", "val_f1"} <= set(h.columns)
    assert run.meta["best_val"]["f1"] == h["val_f1"].max()
    # the kept model is the best epoch's: re-evaluating on val reproduces its F1
    assert evaluate(run.model, splits.val, "imu")["f1"] == pytest.approx(h["val_f1"].max())


def test_frozen_source_unchanged(splits, video_source):
    src_run, path = video_source
    before = {k: v.clone() for k, v in src_run.model.state_dict().items()}
    mode, grads = src_run.model.training, [p.requires_grad for p in src_run.model.parameters()]
    run = train_transfer(splits, src_run, "imu", lam=1.0, preset=TINY["imu"], seed=0, progress=False)
    after = src_run.model.state_dict()
    assert all(torch.equal(before[k].cpu(), after[k].cpu()) for k in before)     # incl. BN running stats
    assert src_run.model.training == mode                                         # given back as it was
    assert [p.requires_grad for p in src_run.model.parameters()] == grads
    assert {"train_ca", "train_mask_frac"} <= set(run.history.columns)
    assert (run.history["train_ca"] > 0).all()


def test_lambda_zero_equals_baseline(splits, video_source):
    """With lam = 0 the transfer term adds nothing: same seed -> same model as unimodal."""
    base = train_unimodal(splits, "imu", preset=TINY["imu"], seed=1, progress=False)
    zero = train_transfer(splits, video_source[0], "imu", lam=0.0, preset=TINY["imu"], seed=1, progress=False)
    assert base.history["train_ce"].tolist() == pytest.approx(zero.history["train_ce"].tolist(), abs=1e-6)
    assert base.test["f1"] == zero.test["f1"]


def test_transfer_changes_training(splits, video_source):
    a = train_transfer(splits, video_source[0], "imu", lam=1.0, mcma=True, preset=TINY["imu"], seed=1,
                       progress=False)
    b = train_unimodal(splits, "imu", preset=TINY["imu"], seed=1, progress=False)
    assert a.history["train_ce"].tolist() != pytest.approx(b.history["train_ce"].tolist(), abs=1e-6)


def test_mcma_mask_uses_source_correctness(splits, video_source):
    model = video_source[0].model
    dev = next(model.parameters()).device          # where fit left it: CUDA on a GPU machine
    src = LiveSource(model, "video")
    batch = next(iter(torch.utils.data.DataLoader(splits.train, batch_size=8)))
    k_s, v_s, correct = src(batch, dev)[:3]
    logits = model(batch["video"].to(dev)).logits
    assert torch.equal(correct, logits.argmax(1) == batch["label"].to(dev))
    assert k_s.shape[:2] == (8, 4)


def test_checkpoint_round_trip(splits, video_source):
    run, path = video_source
    model, meta = load_checkpoint(path)
    assert meta["modality"] == "video" and meta["classes"] == splits.train.classes
    assert meta["input_shape"] == list(splits.train.input_shape("video"))
    # the state round-trips exactly: every parameter and buffer (BN running statistics included)
    saved, trained = model.state_dict(), run.model.state_dict()
    assert saved.keys() == trained.keys()
    assert all(torch.equal(saved[k], trained[k].cpu()) for k in saved)
    # Same weights, same kernels -> same logits. Training on CUDA leaves the trained model in
    # channels_last (its weights' memory format and the encoder's flag); a freshly loaded model is
    # contiguous, and cuDNN runs other algorithms for NHWC than for NCHW, with TF32 allowed by
    # default: their logits differ in the 4th decimal (measured on an H200). So the loaded model
    # runs in the trained model's layout, with deterministic algorithms and no TF32, and must give
    # the same logits bit for bit; the other layout only within float tolerance.
    dev = next(run.model.parameters()).device      # compare on the trained model's device
    x = torch.stack([splits.test[i]["video"] for i in range(4)]).to(dev)
    model.to(dev).eval(), run.model.eval()
    with torch.no_grad():
        plain = model(x).logits
        model.encoder.channels_last = run.model.encoder.channels_last
        if run.model.encoder.channels_last:
            model.to(memory_format=torch.channels_last)
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
            assert torch.equal(model(x).logits, run.model(x).logits)
        torch.testing.assert_close(plain, run.model(x).logits, rtol=1e-3, atol=1e-3)
    assert evaluate(model, splits.test, "video")["f1"] == evaluate(run.model, splits.test, "video")["f1"]


def test_checkpoint_atomic_and_bad_files(tmp_path, splits, video_source):
    model = video_source[0].model
    path = tmp_path / "c.pt"
    save_checkpoint(path, model, {"modality": "video"})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]       # no temp file left
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable dcatkit checkpoint") as junk:
        load_checkpoint(tmp_path / "junk.pt")
    # junk is not "Python objects" (torch words both failures alike) and gets no advice to load it unsafely
    assert "not a file torch.save wrote" in str(junk.value) and "weights_only=False" not in str(junk.value)
    import numpy as np
    torch.save({"state_dict": {}, "config": {}, "meta": {"lr": np.float64(0.1)}}, tmp_path / "np.pt")
    with pytest.raises(ValueError, match=r"holds a Python object .*numpy.*weights_only=False\) reads it"):
        load_checkpoint(tmp_path / "np.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="expected keys"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match=r"is a folder, not a checkpoint file: name the .pt file in it"):
        load_checkpoint(tmp_path)                            # a folder said as such (it read "no checkpoint at")


def test_a_save_cut_short_leaves_the_old_checkpoint_and_no_temp_file(splits, tmp_path, monkeypatch):
    """A save that fails half-way (disk full, a kill seen as an exception) leaves the previous
    checkpoint readable and byte for byte as it was, and removes its own temp file."""
    import dcatkit.checkpoint as ck

    model = new_imu_model(splits, 0)
    path = tmp_path / "c.pt"
    save_checkpoint(path, model, {"modality": "imu", "n": 1})
    before = path.read_bytes()

    def half_then_fail(obj, f):
        f.write(before[: len(before) // 2])         # half a file written, then the save dies
        raise OSError("No space left on device")

    monkeypatch.setattr(ck.torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model, {"modality": "imu", "n": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)[1]["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]        # the temp file is gone


def test_a_source_checkpoint_with_the_classes_in_another_order_does_not_fit():
    """Class i of the source's head must be class i of the target: the same names in another
    order would teach every sample another class's attention."""
    from dcatkit.checkpoint import check_source_fits
    from dcatkit.provenance import SourceMismatch

    fits = dict(target_modality="imu", available_modalities=("imu", "video"))
    check_source_fits({"modality": "video", "classes": ["a", "b", "c"]}, classes=["a", "b", "c"], **fits)
    with pytest.raises(SourceMismatch, match="same names, same order needed"):
        check_source_fits({"modality": "video", "classes": ["b", "a", "c"]}, classes=["a", "b", "c"], **fits)
    # names not recorded: the count alone (its outputs) is checked, where given
    check_source_fits({"modality": "video", "classes": None}, classes=["a", "b", "c"], num_classes=3, **fits)
    with pytest.raises(SourceMismatch, match=r"the source \('video' model\) has 4 classes but the data has 3 "
                                             r"\['a', 'b', 'c'\].*Use a source trained on this data's classes"):
        check_source_fits({"modality": "video"}, classes=["a", "b", "c"], num_classes=4, **fits)


def test_a_cuda_device_asked_for_without_cuda_is_a_clear_error(monkeypatch):
    """resolve_device refuses 'cuda' / 'cuda:1' where CUDA is missing (before any training), and
    'auto' then means the CPU."""
    from dcatkit.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for dev in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match="asked for but CUDA is not available"):
            resolve_device(dev)
    assert resolve_device("auto") == torch.device("cpu") == resolve_device("cpu")


def test_seed_everything_seeds_python_numpy_and_torch():
    """Each global generator draws what a fresh generator with that seed draws."""
    import random

    seed_everything(5)
    got = (random.random(), np.random.rand(), torch.rand(1).item())
    assert got == (random.Random(5).random(), np.random.RandomState(5).rand(),
                   torch.rand(1, generator=torch.Generator().manual_seed(5)).item())


def test_make_loader_shuffles_by_its_seed_and_only_modalities_drops_the_others(splits):
    from dcatkit.runtime import make_loader, only_modalities

    def order(seed):
        return torch.cat([b["label"] for b in make_loader(splits.train, 8, shuffle=True, seed=seed)]).tolist()

    assert order(3) == order(3) != order(4)
    both = splits.train
    imu = only_modalities(both, ["imu"])
    assert set(both.modalities) == {"imu", "video"} and list(imu.modalities) == ["imu"]
    assert "video" not in imu[0] and torch.equal(imu[0]["imu"], both[0]["imu"])
    assert only_modalities(both, None) is both and only_modalities(both, ["imu", "video"]) is both


def test_a_path_in_a_checkpoints_meta_is_written_as_a_string_that_loads_back(splits, tmp_path):
    """torch.load(weights_only=True) reads no pathlib objects: a Path in meta (a source's file)
    is saved as its string, so the checkpoint loads."""
    from pathlib import Path

    save_checkpoint(tmp_path / "c.pt", new_imu_model(splits, 0), {"modality": "imu", "source": Path("a") / "b.pt"})
    assert load_checkpoint(tmp_path / "c.pt")[1]["source"] == str(Path("a") / "b.pt")


def test_source_mismatch_errors(splits, video_source, tmp_path):
    _, path = video_source
    with pytest.raises(ValueError, match="both 'video'"):
        load_source(path, splits, "video")
    model, meta = load_checkpoint(path)
    save_checkpoint(tmp_path / "wrong.pt", model, {**meta, "classes": list(reversed(meta["classes"]))})
    with pytest.raises(ValueError, match="do not match the target run's classes"):
        load_source(tmp_path / "wrong.pt", splits, "imu")
    imu_only = tiny_splits(48, modalities=("imu",))
    with pytest.raises(ValueError, match=rf"the source {re.escape(str(path))} is a 'video' model but the data has "
                                         r"only \('imu',\): use a source of one of the data's modalities"):
        load_source(path, imu_only, "imu")
    with pytest.raises(ValueError, match=r"^the source is a 'video' model but the data has only"):   # not a file
        load_source(model, imu_only, "imu")


def test_bad_parameters(splits, video_source):
    model = build_model("imu", 8, splits.train.input_shape("imu"), TINY["imu"])
    for lam in (-0.1, float("nan"), "1"):
        with pytest.raises(ValueError, match="lam must be"):
            fit_transfer(model, video_source[0].model, splits.train, splits.val, lam=lam, preset=TINY["imu"])
    with pytest.raises(ValueError, match="epochs must be"):
        fit(model, splits.train, splits.val, preset=TINY["imu"], epochs=0)
    with pytest.raises(ValueError, match="unknown transfer loss"):
        fit_transfer(model, video_source[0].model, splits.train, splits.val, lam=1.0, loss="kl",
                     preset=TINY["imu"])


def test_non_finite_loss_names_epoch_and_step(splits, video_source):
    model = build_model("imu", 8, splits.train.input_shape("imu"), TINY["imu"])
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="epoch 1, step 0"):
        fit(model, splits.train, splits.val, preset=TINY["imu"], progress=False)
    # a transfer run logs its terms as (value, count): the message is built from them too (it raised TypeError)
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 0 .*'ce': nan.*'ca': .*lower the lr or lambda"):
        fit_transfer(model, video_source[0].model, splits.train, splits.val, preset=TINY["imu"], lam=1.0,
                     source_cache=False, progress=False)



def _nan_at_call(model, n: int):
    """Make ``model``'s logits NaN from its ``n``-th forward call on (counted in ``calls``)."""
    calls = []

    def hook(mod, inp, out):
        calls.append(1)
        return out * float("nan") if len(calls) >= n else out

    model.head.register_forward_hook(hook)
    return calls


@pytest.mark.parametrize("every", [1, 50])
def test_non_finite_loss_is_raised_naming_the_first_such_step(splits, monkeypatch, every):
    """The loop looks at the loss's finiteness every FINITE_CHECK_EVERY steps and at the epoch's
    end (looking makes a GPU's queue drain): it names the first non-finite step, not a later one
    that NaN weights made non-finite too, and with a look every step it stops there."""
    import dcatkit.train as train_mod

    monkeypatch.setattr(train_mod, "FINITE_CHECK_EVERY", every)
    preset = TINY["imu"].with_(batch_size=8)
    n_steps = -(-len(splits.train) // 8)
    assert n_steps >= 5
    model = build_model("imu", 8, splits.train.input_shape("imu"), preset)
    calls = _nan_at_call(model, 3)
    with pytest.raises(FloatingPointError, match=r"non-finite loss \(nan\) at epoch 1, step 2 .*'ce': nan"):
        fit(model, splits.train, splits.val, preset=preset, progress=False)
    assert len(calls) == (3 if every == 1 else n_steps)     # no validation pass: the epoch is not recorded


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA device: counts the steps' waits for the GPU")
def test_a_cached_transfer_epoch_does_not_wait_for_the_gpu_at_each_step(splits, video_source, monkeypatch):
    """Goal 3 of issue 18 (the cached step <= 1.15x the unimodal one on a GPU, launch-bound): a step
    that waits for the GPU (``.item()``, ``bool()`` of a GPU value, ``torch.tensor(x, device="cuda")``)
    drains the queue. torch's sync debug mode warns at each such call; an epoch may wait a fixed
    number of times (the finiteness look and the stats at its end), not once per step."""
    import warnings
    import dcatkit.train as train_mod

    seen, real = [], train_mod._train_epoch

    def counted(*a, **k):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as got:
                warnings.simplefilter("always")
                out = real(*a, **k)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        seen.append([f"{w.filename}:{w.lineno}" for w in got if "synchroniz" in str(w.message)])
        return out

    monkeypatch.setattr(train_mod, "_train_epoch", counted)
    preset = TINY["imu"].with_(batch_size=8)
    model = build_model("imu", 8, splits.train.input_shape("imu"), preset)
    fit_transfer(model, video_source[0].model, splits.train, splits.val, lam=1.0, preset=preset, epochs=1,
                 source_cache=True, progress=False)
    n_steps = -(-len(splits.train) // 8)
    assert len(seen) == 1 and len(seen[0]) <= 3 < n_steps, seen

def test_compare_table(splits, tmp_path):
    table, runs = compare(splits, source="video", target="imu", lam=1.0, seed=0, out_dir=tmp_path,
                          epochs={"source": 1, "target": 1}, progress=False)
    assert list(table.index) == ["video source", "imu baseline", "D-CAT", "No MCMA"]
    assert table.loc["imu baseline", "delta_f1"] == 0.0
    assert table.loc["D-CAT", "delta_f1"] == pytest.approx(table.loc["D-CAT", "f1"] - table.loc["imu baseline", "f1"])
    assert (tmp_path / "source_video_seed0.pt").is_file()
    # a wrong target, or the source as target, is refused before the source and the baseline train
    for kw, msg in ((dict(source="video", target="vidoe"), r"target 'vidoe': the data has no modality"),
                    (dict(source="imu", target="imu"), "source and target are both 'imu'")):
        with pytest.raises(ValueError, match=msg):
            compare(splits, lam=1.0, seed=0, out_dir=tmp_path / "bad", progress=False, **kw)
        assert not (tmp_path / "bad").exists()


def test_compare_gives_each_run_its_lam_mcma_and_epochs(splits, tmp_path):
    """compare hands each role its own settings: D-CAT and No MCMA the caller's lam (not a fixed
    1.0), MCMA on for D-CAT and off for No MCMA (else the ablation is D-CAT twice), the source
    epochs["source"] and the baseline and both transfer runs epochs["target"]. A swap of any of
    these still gives a table of four rows, so only the runs' records show it."""
    _, runs = compare(splits, source="video", target="imu", lam=0.5, seed=0, out_dir=tmp_path,
                      epochs={"source": 1, "target": 2}, progress=False)
    assert (runs["dcat"].meta["lam"], runs["dcat"].meta["mcma"]) == (0.5, True)
    assert (runs["no_mcma"].meta["lam"], runs["no_mcma"].meta["mcma"]) == (0.5, False)
    assert list(runs["source"].history["epoch"]) == [1]
    for role in ("baseline", "dcat", "no_mcma"):
        assert list(runs[role].history["epoch"]) == [1, 2], role


@pytest.mark.parametrize("role_file", ["dcat_video_imu_seed0.pt", "dcat_nomcma_video_imu_seed0.pt"])
def test_compare_refuses_up_front_a_transfer_checkpoint_that_is_the_source_file(tmp_path, role_file):
    """A source_checkpoint given at the very path where compare's D-CAT (or No MCMA) run would save
    is refused by check_compare_outputs, before anything trains: the transfer run would otherwise
    overwrite the frozen source it learns from (the CLI's demo checks all seeds this way first)."""
    from dcatkit.experiment import check_compare_outputs

    src = tmp_path / role_file
    src.write_bytes(b"x")
    with pytest.raises(ValueError, match=rf"checkpoint path {src} is the frozen source's checkpoint"):
        check_compare_outputs(tmp_path, source="video", target="imu", seeds=(0,), source_checkpoint=src)
    assert src.read_bytes() == b"x"


# ---------------------------------------------------------------- tests that pin the method (see MUTATIONS.md)

def _constant_source(splits, c: int):
    """A video source that predicts class ``c`` for every input (zero head weights, bias
    towards c) while its K, V still depend on the input."""
    seed_everything(7)
    src = build_model("video", len(splits.classes), splits.train.input_shape("video"), TINY["video"])
    with torch.no_grad():
        src.head.weight.zero_()
        src.head.bias.zero_()
        src.head.bias[c] = 10.0
    return src


def _relabelled(ds, labels):
    from dcatkit.data.dataset import PairedDataset
    return PairedDataset(ds.arrays, labels, ds.classes, ds.subjects, ds.ids, ds.sample_rates)


def _target(splits, seed, preset):
    seed_everything(seed)
    return build_model("imu", len(splits.classes), splits.train.input_shape("imu"), preset)


def _same_training(a, b, cols=("train_ce", "train_loss", "val_f1")):
    for c in cols:
        assert a.history[c].tolist() == pytest.approx(b.history[c].tolist(), rel=1e-6, abs=1e-7), c
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return all(torch.allclose(sa[k].float(), sb[k].float(), rtol=1e-5, atol=1e-6) for k in sa)


@pytest.mark.parametrize("cache", [False, True])
def test_all_wrong_source_with_mcma_is_the_baseline(splits, cache, tmp_path):
    """MCMA (Eq. 17) drops every sample the source gets wrong: with a source that is
    wrong on all training samples, D-CAT is the baseline with the same seed, while
    No MCMA (every sample counts) is not."""
    c = 0
    src = _constant_source(splits, c)
    keep = np.flatnonzero(splits.train.labels != c)
    train = splits.train.subset(keep)                       # the source is wrong on every sample
    p = TINY["imu"]
    base = fit(_target(splits, 1, p), train, splits.val, preset=p, seed=1, progress=False)
    kw = dict(lam=1.0, preset=p, seed=1, progress=False, source_cache=cache, cache_dir=tmp_path)
    dcat = fit_transfer(_target(splits, 1, p), src, train, splits.val, mcma=True, **kw)
    assert dcat.history["train_mask_frac"].tolist() == [0.0] * len(dcat.history)
    assert dcat.history["train_ca"].isna().all()             # a mean over no counted sample: none to log
    assert _same_training(dcat, base)
    nomcma = fit_transfer(_target(splits, 1, p), src, train, splits.val, mcma=False, **kw)
    assert (nomcma.history["train_ca"] > 0).all()
    assert nomcma.history["train_ce"].tolist() != pytest.approx(base.history["train_ce"].tolist(), abs=1e-6)


@pytest.mark.parametrize("cache", [False, True])
def test_all_right_source_mcma_equals_no_mcma(splits, cache, tmp_path):
    """With a source right on every training sample the MCMA mask keeps them all:
    D-CAT with and without MCMA train the same model, which differs from the baseline."""
    c = 3
    src = _constant_source(splits, c)
    train = _relabelled(splits.train, np.full(len(splits.train), c))   # the source is right on every sample
    p = TINY["imu"]
    kw = dict(lam=1.0, preset=p, seed=2, progress=False, source_cache=cache, cache_dir=tmp_path)
    mcma = fit_transfer(_target(splits, 2, p), src, train, splits.val, mcma=True, **kw)
    nomcma = fit_transfer(_target(splits, 2, p), src, train, splits.val, mcma=False, **kw)
    assert mcma.history["train_mask_frac"].tolist() == [1.0] * len(mcma.history)
    assert (mcma.history["train_ca"] > 0).all()
    assert _same_training(mcma, nomcma, ("train_ce", "train_ca", "train_loss", "val_f1"))
    base = fit(_target(splits, 2, p), train, splits.val, preset=p, seed=2, progress=False)
    assert mcma.history["train_ce"].tolist() != pytest.approx(base.history["train_ce"].tolist(), abs=1e-6)


@pytest.mark.parametrize("cache", [False, True])
def test_source_in_training_mode_is_frozen_and_in_eval(splits, cache, tmp_path):
    """A source handed over in training mode (dropout active, BatchNorm on batch
    statistics) is used in eval mode: its BN running statistics do not move, the MCMA
    mask is the eval-mode source's correctness, and training matches a source that was
    in eval mode from the start."""
    import copy

    from dcatkit.train import predict

    seed_everything(11)
    src = build_model("video", len(splits.classes), splits.train.input_shape("video"),
                      TINY["video"].with_(dropout=0.9))
    reference = copy.deepcopy(src).eval()
    y, pred = predict(copy.deepcopy(src), splits.train, "video")      # eval-mode correctness
    eval_acc = float(np.mean(y == pred))
    before = {k: v.clone() for k, v in src.state_dict().items()}
    src.train()
    p = TINY["imu"]
    kw = dict(lam=1.0, preset=p, seed=3, progress=False, source_cache=cache)
    run = fit_transfer(_target(splits, 3, p), src, splits.train, splits.val, cache_dir=tmp_path / "a", **kw)
    # afterwards the caller's model is as the caller had it (training mode, trainable), on its device
    assert src.training and all(m.training for m in src.modules())
    assert all(q.requires_grad for q in src.parameters()) and all(q.device.type == "cpu" for q in src.parameters())
    after = src.state_dict()
    assert all(torch.equal(before[k], after[k].cpu()) for k in before)     # BN running stats untouched
    assert run.history["train_mask_frac"].tolist() == pytest.approx([eval_acc] * len(run.history), abs=1e-6)
    ref = fit_transfer(_target(splits, 3, p), reference, splits.train, splits.val, cache_dir=tmp_path / "b", **kw)
    assert _same_training(run, ref, ("train_ce", "train_ca", "train_mask_frac", "val_f1"))


def test_checkpoint_source_loads_in_eval_mode(splits, video_source):
    model = load_source(video_source[1], splits, "imu")
    assert not model.training and not any(m.training for m in model.modules())


def test_bad_checkpoint_paths_fail_before_any_training(splits, video_source, tmp_path, monkeypatch, no_epochs):
    """A checkpoint path the run could not write at its end (a folder, a path under a file) or
    must not overwrite (the frozen source's own file) stops the run before its first epoch, and
    the source file is left as it was; so does a negative lambda in ``compare`` (before the source
    and the baseline train)."""
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"checkpoint path .*adir is a folder; give a file path in it"):
        train_unimodal(splits, "imu", preset=TINY["imu"], checkpoint=folder, progress=False)
    a_file = tmp_path / "imu.pt"
    a_file.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"imu\.pt is a file, not a folder"):
        train_unimodal(splits, "imu", preset=TINY["imu"], checkpoint=a_file / "x.pt", progress=False)
    # a folder this user cannot write in (the nearest existing one: the save would create the rest);
    # the suite runs as root here, where a chmod refuses nothing, so the permission answer is stood in
    import dcatkit.checkpoint as ck_mod

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    with monkeypatch.context() as m:
        m.setattr(ck_mod.os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
        with pytest.raises(ValueError, match=r"the folder .*locked is not writable by this user"):
            train_unimodal(splits, "imu", preset=TINY["imu"], checkpoint=locked / "new" / "x.pt", progress=False)
    _, src_path = video_source
    before = src_path.read_bytes()
    with pytest.raises(ValueError, match=r"is the frozen source's checkpoint .*would replace the source"):
        train_transfer(splits, str(src_path), "imu", preset=TINY["imu"], checkpoint=src_path, progress=False)
    with pytest.raises(ValueError, match=r"is the frozen source's checkpoint .*would replace the source"):
        train_transfer(splits, video_source[0], "imu", preset=TINY["imu"], checkpoint=src_path, progress=False)
    assert src_path.read_bytes() == before
    with pytest.raises(ValueError, match=r"lam must be a finite number >= 0"):
        compare(splits, source="video", target="imu", lam=-1.0, out_dir=tmp_path / "cmp", progress=False)


def test_compare_checks_all_its_checkpoints_before_the_source_trains(splits, tmp_path, no_epochs):
    """compare checked each run's checkpoint path only when that run started: a folder at the No-MCMA
    checkpoint stopped it after the source, the baseline and D-CAT had trained. Now all four paths
    (and their .state files) are checked first, the error naming the path."""
    blocker = tmp_path / "dcat_nomcma_video_imu_seed3.pt"
    blocker.mkdir()
    with pytest.raises(ValueError, match=rf"seed 3's no_mcma checkpoint path {blocker} is a folder"):
        compare(splits, source="video", target="imu", seed=3, out_dir=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [blocker.name]


def test_a_checkpoint_records_the_epochs_it_trained_not_the_presets(splits, tmp_path):
    """epochs= over a preset of 1 epoch: the checkpoint's meta said the preset's 1 (its resume key
    already had 2). Now meta["epochs"] and meta["preset"]["epochs"] are the 2 trained, the rest of
    the preset as given, meta["preset_epochs"] the preset's 1; a checkpoint of the older form (no
    "epochs") still loads."""
    one = TINY["imu"].with_(epochs=1)
    run = train_unimodal(splits, "imu", preset=one, epochs=2, seed=0, checkpoint=tmp_path / "i.pt", progress=False)
    assert len(run.history) == 2                                      # it did train 2 epochs
    _, meta = load_checkpoint(tmp_path / "i.pt")
    assert meta["epochs"] == 2 and meta["preset_epochs"] == 1
    assert meta["preset"] == {**one.to_dict(), "epochs": 2}
    old = {k: v for k, v in meta.items() if k not in ("epochs", "preset_epochs")}
    save_checkpoint(tmp_path / "old.pt", run.model, {**old, "preset": one.to_dict()})
    model, old_meta = load_checkpoint(tmp_path / "old.pt")
    assert "epochs" not in old_meta and old_meta["preset"]["epochs"] == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), run.model.state_dict().values()))


@pytest.mark.parametrize("script,keep", [([0.2, 0.9, 0.3], 2), ([0.2, 0.7, 0.7, 0.1], 2)])
def test_kept_weights_are_the_first_best_validation_epoch(monkeypatch, script, keep):
    """Validation F1 scripted per epoch: the run keeps the epoch with the highest (the first of a
    tie), and its weights are exactly those a same-seed run stopped at that epoch ends with (on
    the CPU the shorter run is a bit-identical prefix). Every validation pass sees the validation
    ids, nothing else. (Keeping the last epoch, keeping a live reference to the weights, or
    moving to a tied later epoch each fail here.)"""
    import dcatkit.train as T

    sp = tiny_splits(96, modalities=("imu",))
    real, seen = T.evaluate, []

    def scripted(model, ds, modality, **kw):
        seen.append(list(ds.ids))
        return {**real(model, ds, modality, **kw), "f1": script[len(seen) - 1]}

    monkeypatch.setattr(T, "evaluate", scripted)
    res = fit(new_imu_model(sp, 0), sp.train, sp.val, preset=TINY["imu"], epochs=len(script), seed=0,
              progress=False, device="cpu")
    assert res.best["epoch"] == keep and all(ids == list(sp.val.ids) for ids in seen)
    rising = iter(range(1, 100))
    monkeypatch.setattr(T, "evaluate", lambda model, ds, modality, **kw: {**real(model, ds, modality, **kw),
                                                                           "f1": float(next(rising))})
    ref = fit(new_imu_model(sp, 0), sp.train, sp.val, preset=TINY["imu"], epochs=keep, seed=0, progress=False,
              device="cpu").model.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in res.model.state_dict().items())


def test_transfer_chooses_its_epoch_on_validation_only(splits, video_source, monkeypatch):
    """train_transfer's training loop evaluates the validation part and nothing else (the test
    part is scored once, after training, by the experiment layer), and the kept epoch's recorded
    F1 is what the returned model scores on validation."""
    import dcatkit.train as T

    real, seen = T.evaluate, []

    def spy(model, ds, modality, **kw):
        seen.append(list(ds.ids))
        return real(model, ds, modality, **kw)

    monkeypatch.setattr(T, "evaluate", spy)
    run = train_transfer(splits, video_source[0], "imu", preset=TINY["imu"].with_(epochs=2), progress=False,
                         device="cpu")
    assert len(seen) == 2 and all(ids == list(splits.val.ids) for ids in seen)
    assert run.meta["best_val"]["f1"] == pytest.approx(real(run.model, splits.val, "imu", device="cpu")["f1"])


@pytest.mark.parametrize("where", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_compile_runs_the_model_through_torch_compile_and_trains_as_eager(monkeypatch, where):
    """``fit(compile=True)`` (README, GPU) hands the training model to torch.compile once, dynamo
    traces it, and the saved state has the plain model's names (no ``_orig_mod.`` prefix). On the
    CPU, training gives the weights eager training gives. The backend is ``aot_eager``: the same
    trace, forward and backward through AOTAutograd, without inductor's code generation (minutes on
    two cores); inductor's own numerics are torch's concern, the wiring is ours. Where a GPU is
    visible (``make test-gpu``) it runs there too: there AMP and Adam make compiled and eager runs
    drift apart (a tiny gradient's sign flips a whole step), so it checks the wiring and finite
    weights only."""
    import torch._dynamo
    sp = tiny_splits(modalities=("imu",))
    kw = dict(modality="imu", preset=TINY["imu"], epochs=2, seed=0, progress=False, device=where)
    eager = fit(new_imu_model(sp, 0), sp.train, sp.val, **kw)
    handed, real = [], torch.compile

    def compile_aot_eager(model, **ckw):
        handed.append(model)
        return real(model, backend="aot_eager", **ckw)

    monkeypatch.setattr(torch, "compile", compile_aot_eager)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = fit(new_imu_model(sp, 0), sp.train, sp.val, compile=True, **kw)
    assert len(handed) == 1 and handed[0] is compiled.model        # the model itself, once
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # dynamo really traced it
    a, b = eager.model.state_dict(), compiled.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.isfinite(v.float()).all() for v in b.values())
    if where == "cpu":
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
        assert compiled.history["val_f1"].tolist() == pytest.approx(eager.history["val_f1"].tolist(), abs=1e-6)


def test_the_callers_source_is_given_back_as_it_was(splits, video_source):
    """train_transfer (through load_source) and fit_transfer, also one that fails before training,
    give the caller's source model back in the mode and with the requires_grad it had: load_source
    put it in eval mode, and a failed call left it frozen (a later call then took that as the
    caller's state)."""
    src_run = video_source[0]
    model = src_run.model
    mode, grads = model.training, [q.requires_grad for q in model.parameters()]   # the shared fixture's
    model.train().requires_grad_(True)                    # (other tests may have frozen it)
    try:
        train_transfer(splits, src_run, "imu", lam=1.0, preset=TINY["imu"].with_(epochs=1), seed=0, progress=False)
        assert model.training and all(q.requires_grad for q in model.parameters())
        # a failure after the source was frozen (inside the run: here a cache that cannot be built)
        dup = splits.train.subset([0, 0, 1, 2, 3])
        with pytest.raises(ValueError, match="sample ids must be unique"):
            fit_transfer(_target(splits, 0, TINY["imu"]), model, dup, splits.val, lam=1.0,
                         preset=TINY["imu"], progress=False, source_cache=True)
        assert model.training and all(q.requires_grad for q in model.parameters())
    finally:
        model.train(mode)
        for q, g in zip(model.parameters(), grads):
            q.requires_grad_(g)


def test_tune_transfer_takes_no_checkpoint():
    """Every grid point wrote the one checkpoint given, so the file held the last point's model, not
    the chosen one's (and resume= resumed one point from another's state): refused before training."""
    from dcatkit.experiment import tune_transfer
    for kw in ({"checkpoint": "tuned.pt"}, {"checkpoint": "tuned.pt", "resume": True}):
        with pytest.raises(ValueError, match=r"one run per grid point and takes no checkpoint"):
            tune_transfer(None, None, "imu", method="dcat", seed=0, **kw)


def test_evaluate_covers_all_the_models_classes_when_the_data_lacks_the_top_ones(splits):
    """evaluate sizes the confusion matrix by the model's num_classes, not by the largest label
    seen: on data without the top classes those classes are absent, not dropped."""
    model = new_imu_model(splits, 0)
    with torch.no_grad():                      # a model that always predicts class 0
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([5.0] + [0.0] * 7))
    keep = np.flatnonzero(splits.test.labels < 4)
    part = splits.test.subset(keep)
    y = splits.test.labels[keep]
    assert len(y) > 0 and y.max() < 4
    conf = np.zeros((8, 8), dtype=np.int64)
    for c in y:
        conf[c, 0] += 1                        # every sample predicted 0
    absent = sorted(set(range(8)) - set(y.tolist()))
    assert {4, 5, 6, 7} <= set(absent)
    with pytest.warns(UserWarning, match=f"{len(absent)} of 8 classes have no sample"):
        m = evaluate(model, part, "imu", device="cpu")
    assert m["confusion"].shape == (8, 8)
    np.testing.assert_array_equal(m["confusion"], conf)
    assert m["absent_classes"] == absent
    assert m["accuracy"] == pytest.approx(float(np.mean(y == 0)))


def test_a_source_of_the_targets_own_modality_is_refused(splits):
    """fit_transfer with an IMU source for an IMU target is an error naming the modality."""
    target, source = new_imu_model(splits, 0), new_imu_model(splits, 1)
    for sm in (None, "imu"):                   # the source's own modality, or named
        with pytest.raises(ValueError, match=r"^source and target modality are both 'imu'$"):
            fit_transfer(target, source, splits.train, splits.val, lam=1.0, source_modality=sm, preset=TINY["imu"],
                         epochs=1, source_cache=False, progress=False, device="cpu")


def test_an_empty_validation_set_fails_before_training(splits, monkeypatch):
    """fit with no validation sample is refused up front (not after the epochs, when the
    first validation finds nothing to score)."""
    import dcatkit.train as train_mod

    epochs_run = []
    real = train_mod._train_epoch
    monkeypatch.setattr(train_mod, "_train_epoch", lambda *a, **k: epochs_run.append(1) or real(*a, **k))
    model = new_imu_model(splits, 0)
    with pytest.raises(ValueError, match=rf"^empty split: train has {len(splits.train)} samples, val has 0$"):
        fit(model, splits.train, splits.val.subset([]), preset=TINY["imu"], epochs=1, progress=False, device="cpu")
    assert epochs_run == []
