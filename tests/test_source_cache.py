import copy

import numpy as np
import pytest
import torch

from dcatkit import provenance
from dcatkit.experiment import train_transfer, train_unimodal
from dcatkit.data.splits import LazyRows
from dcatkit.model import build_model
from dcatkit.frozen_source import FoldedResNet, LiveSource, SourceCache, _rows_into, cache_key, prepare_source
from dcatkit.runtime import make_loader
from dcatkit.train import predict
from helpers import TINY, CountingArray, tiny_splits


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    sp = tiny_splits(96, modalities=("imu", "video"))
    src = train_unimodal(sp, "video", preset=TINY["video"], seed=0, progress=False)
    return sp, src


def test_cache_matches_live_source(setup, tmp_path):
    sp, src = setup
    cache = SourceCache.build(src.model, sp.train, "video", tmp_path, batch_size=7, progress=False)
    live = LiveSource(src.model, "video")
    for batch in make_loader(sp.train, 10, shuffle=True, seed=1):
        k_c, v_c, c_c = cache(batch, torch.device("cpu"))[:3]
        k_l, v_l, c_l = live(batch, torch.device("cpu"))[:3]
        assert torch.equal(c_c, c_l)
        assert torch.allclose(k_c, k_l, rtol=1e-3, atol=1e-3) and torch.allclose(v_c, v_l, rtol=1e-3, atol=1e-3)
    assert (tmp_path / cache_key(src.model, sp.train, "video") / "meta.json").is_file()


def test_training_with_cache_matches_live(setup, tmp_path):
    sp, src = setup
    kw = dict(lam=1.0, preset=TINY["imu"].with_(epochs=3), seed=2, progress=False)
    live = train_transfer(sp, src, "imu", source_cache=False, **kw)
    cached = train_transfer(sp, src, "imu", source_cache=True, cache_dir=tmp_path, **kw)
    np.testing.assert_allclose(cached.history["train_loss"], live.history["train_loss"], rtol=2e-3)
    np.testing.assert_allclose(cached.history["train_ca"], live.history["train_ca"], rtol=2e-3)
    if torch.cuda.is_available():
        # on CUDA the cache is built by the fast path (BatchNorm folded, bf16, another batch size):
        # the source's logits differ from the live ones in the last bf16 bits, which may flip a
        # near-tie argmax, so the MCMA fraction may move by a sample or two (of len(train))
        np.testing.assert_allclose(cached.history["train_mask_frac"], live.history["train_mask_frac"],
                                   atol=2.5 / len(sp.train))
    else:
        assert cached.history["train_mask_frac"].tolist() == live.history["train_mask_frac"].tolist()
    assert abs(cached.test["f1"] - live.test["f1"]) <= 0.05


def test_cache_reused_and_keyed(setup, tmp_path, monkeypatch):
    sp, src = setup
    SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)
    calls = []
    orig = LiveSource.__call__
    monkeypatch.setattr(LiveSource, "__call__", lambda self, *a: calls.append(1) or orig(self, *a))
    SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)
    assert calls == []                                        # reused, source not run
    SourceCache.build(src.model, sp.val, "video", tmp_path, progress=False)
    assert calls                                              # other data -> other key, built
    other = train_unimodal(sp, "video", preset=TINY["video"], seed=5, progress=False)
    assert cache_key(other.model, sp.train, "video") != cache_key(src.model, sp.train, "video")
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2


def test_a_cache_records_how_it_was_built_and_a_run_on_another_device_is_told(setup, tmp_path, capsys):
    """meta.json's ``built``: device, fast path, dtype, torch. A cache built elsewhere (here: its record
    says CUDA, bf16) is still read, not rebuilt (the key holds no device: one sweep, one source), and
    the run says that it trains against outputs computed there; a cache built here says nothing."""
    import json

    sp, src = setup
    cache = SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False, fast=False)
    assert cache.built == {"device": "cpu", "device_name": provenance.cpu_name(), "fast": False, "compile": False,
                           "dtype": "float32", "torch": torch.__version__}
    assert SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False).built == cache.built
    assert "was built on" not in capsys.readouterr().out
    meta_file = cache.folder / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["built"] = {**meta["built"], "device": "cuda", "device_name": "NVIDIA H200", "fast": True, "dtype": "bfloat16"}
    meta_file.write_text(json.dumps(meta))
    again = SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)
    assert again.folder == cache.folder and again.built["device"] == "cuda"
    out = capsys.readouterr().out
    assert f"the source cache {cache.folder} was built on cuda (NVIDIA H200, bfloat16, fast path) and is read on cpu" in out
    del meta["built"]                                  # a cache of an older dcatkit: no record, no note
    meta_file.write_text(json.dumps(meta))
    assert SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False).built is None
    assert "was built on" not in capsys.readouterr().out


def test_interrupted_build_not_reused(setup, tmp_path, monkeypatch):
    sp, src = setup

    def boom(self, *a):
        raise KeyboardInterrupt

    monkeypatch.setattr(LiveSource, "__call__", boom)
    with pytest.raises(KeyboardInterrupt):
        SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []                     # nothing half-written left behind
    monkeypatch.undo()
    cache = SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)
    assert len(cache) == len(sp.train)


def test_augmented_inputs_fall_back_to_live(setup, capsys, tmp_path):
    sp, src = setup
    sp.train.augment = True
    try:
        with pytest.raises(ValueError, match="augments its inputs"):
            train_transfer(sp, src, "imu", lam=1.0, preset=TINY["imu"], source_cache=True, progress=False)
        train_transfer(sp, src, "imu", lam=1.0, preset=TINY["imu"].with_(epochs=1), progress=False,
                       cache_dir=tmp_path)
        assert "runs live at every step" in capsys.readouterr().out
        assert not any(tmp_path.iterdir())                  # and no cache was built (or read)
    finally:
        del sp.train.augment


def test_unknown_id_is_a_clear_error(setup, tmp_path):
    sp, src = setup
    cache = SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)
    with pytest.raises(KeyError, match="not in the source cache"):
        cache({"id": ["nope"]}, torch.device("cpu"))


def test_epochs_read_only_the_modalities_they_use(setup, tmp_path):
    """Unimodal IMU training and cached transfer never read a video sample in their epochs;
    the live source does (it needs them)."""
    sp, src = setup
    from dcatkit.data.dataset import PairedDataset
    from dcatkit.train import fit, fit_transfer
    from dcatkit.model import build_model

    def wrapped(ds):
        arrays = {"imu": ds.arrays["imu"], "video": CountingArray(ds.arrays["video"])}
        return PairedDataset(arrays, ds.labels, ds.classes, ds.subjects, ds.ids, ds.sample_rates)

    train, val = wrapped(sp.train), wrapped(sp.val)
    p = TINY["imu"].with_(epochs=2)
    model = lambda: build_model("imu", len(sp.classes), sp.train.input_shape("imu"), p)   # noqa: E731
    fit(model(), train, val, preset=p, progress=False)
    assert train.arrays["video"].reads == 0 and val.arrays["video"].reads == 0

    SourceCache.build(src.model, train, "video", tmp_path, progress=False)
    train.arrays["video"].reads = 0
    fit_transfer(model(), src.model, train, val, lam=1.0, preset=p, progress=False, source_cache=True,
                 cache_dir=tmp_path)
    # no epoch reads a video sample (the cache key hashes every input once, in batches, not counted here)
    assert train.arrays["video"].reads == 0
    assert val.arrays["video"].reads == 0

    train.arrays["video"].reads = 0
    fit_transfer(model(), src.model, train, val, lam=1.0, preset=p, progress=False, source_cache=False)
    assert train.arrays["video"].reads == 2 * len(train)


def test_cache_key_changes_with_inputs_and_labels(setup):
    """The cached MCMA bit is "source prediction == label": a cache is only valid for the
    same inputs and the same labels, so both are part of the key."""
    from dcatkit.data.dataset import PairedDataset

    sp, src = setup
    ds = sp.train

    def copy_of(arrays=None, labels=None):
        return PairedDataset(arrays or {m: np.array(a, copy=True) for m, a in ds.arrays.items()},
                             ds.labels.copy() if labels is None else labels, ds.classes, ds.subjects, ds.ids,
                             ds.sample_rates)

    key = cache_key(src.model, ds, "video")
    assert cache_key(src.model, copy_of(), "video") == key                 # same content, same key
    video = np.array(ds.arrays["video"], copy=True)
    video[0] = 255 - video[0]                                               # one input changed
    assert cache_key(src.model, copy_of({**ds.arrays, "video": video}), "video") != key
    labels = ds.labels.copy()
    j = int(np.flatnonzero(labels != labels[0])[0])
    labels[[0, j]] = labels[[j, 0]]                                         # two labels swapped
    assert cache_key(src.model, copy_of(labels=labels), "video") != key


def test_any_one_changed_input_is_another_cache(setup, tmp_path):
    """Every input is in the key, not a probe of some: one sample changed anywhere (a clip
    re-extracted) builds a new cache with that sample's new K/V instead of reading the old one."""
    from dcatkit.data.dataset import PairedDataset

    sp, src = setup
    ds = sp.train
    key, first = cache_key(src.model, ds, "video"), SourceCache.build(src.model, ds, "video", tmp_path, progress=False)
    assert len(ds) > 32
    for i in range(len(ds)):
        video = np.array(ds.arrays["video"], copy=True)
        video[i] = 255 - video[i]
        other = PairedDataset({**ds.arrays, "video": video}, ds.labels, ds.classes, ds.subjects, ds.ids,
                              ds.sample_rates)
        assert cache_key(src.model, other, "video") != key, i
    built = SourceCache.build(src.model, other, "video", tmp_path, progress=False)     # the last sample changed
    r = first.rows([ds.ids[-1]])
    assert built.folder != first.folder and not np.array_equal(built.arrays["k"][r], first.arrays["k"][r])


def test_relabelled_data_gets_its_own_mcma_bits(setup, tmp_path):
    """Same inputs, other labels: the cache built second holds the new correctness."""
    from dcatkit.data.dataset import PairedDataset

    sp, src = setup
    ds = sp.train
    first = SourceCache.build(src.model, ds, "video", tmp_path, progress=False)
    shifted = PairedDataset(ds.arrays, (ds.labels + 1) % len(ds.classes), ds.classes, ds.subjects, ds.ids,
                            ds.sample_rates)
    second = SourceCache.build(src.model, shifted, "video", tmp_path, progress=False)
    y, p = predict(src.model, shifted, "video")
    assert np.array_equal(second.correct, y == p) and not np.array_equal(second.correct, first.correct)


def test_finished_cache_is_kept_when_another_build_finishes_first(setup, tmp_path, monkeypatch):
    """Two builds of the same cache race: the one that finishes second keeps the first
    one's folder (another process may be reading it) instead of replacing it."""
    sp, src = setup
    orig = LiveSource.__call__
    state = {}

    def racing(self, batch, device):
        if not state:                       # while this build runs, another one completes
            state["inner"] = "running"
            monkeypatch.setattr(LiveSource, "__call__", orig)
            inner = SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)
            (inner.folder / "reader-was-here").write_text("")
            state["inner"] = inner.folder
            monkeypatch.setattr(LiveSource, "__call__", racing)
        return orig(self, batch, device)

    monkeypatch.setattr(LiveSource, "__call__", racing)
    outer = SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)
    assert outer.folder == state["inner"] and (outer.folder / "reader-was-here").is_file()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [outer.folder.name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".building-")]   # its own temp folder removed


# ------------------------------------------------------------------ the fast build path


@pytest.mark.parametrize("depth", [10, 50])          # BasicBlock and Bottleneck
def test_folded_resnet_is_the_same_function(depth):
    """BatchNorm folded into the convolutions (eval mode): the same outputs as the ResNet,
    in float32 up to rounding, with BN statistics that are not the identity."""
    from dcatkit.encoders import FrameEncoder
    torch.manual_seed(depth)
    enc = FrameEncoder(depth=depth)
    for m in enc.modules():                            # running stats and affine far from (0, 1)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    enc.eval()
    x = torch.rand(3, 3, 32, 32)
    folded = FoldedResNet(enc.backbone).eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        ref, got = enc.backbone(x), folded(x)
        # the algebra, free of float32 rounding: folded in float64, the same function to 1e-10
        enc64 = copy.deepcopy(enc).double()
        ref64, got64 = enc64.backbone(x.double()), FoldedResNet(enc64.backbone).eval()(x.double())
    assert got.shape == ref.shape == (3, enc.d_model)
    torch.testing.assert_close(got64, ref64, rtol=1e-10, atol=1e-10)
    # float32, as the cache runs it: the folded path is as close to the float64 function as the
    # unfolded float32 ResNet is (50 layers of float32 rounding reach ~2e-5 on outputs of ~1,
    # and which kernels run varies with the machine and its load)
    err, base = (got.double() - ref64).abs().max().item(), (ref.double() - ref64).abs().max().item()
    assert err <= 4 * base + 1e-5, (err, base)


def test_prepare_source_leaves_the_source_alone(setup):
    sp, src = setup
    before = {k: v.clone() for k, v in src.model.state_dict().items()}
    ready = prepare_source(src.model, "cpu")
    assert isinstance(ready.encoder.backbone, FoldedResNet) and not isinstance(src.model.encoder.backbone,
                                                                               FoldedResNet)
    after = src.model.state_dict()
    assert all(torch.equal(before[k], after[k].cpu()) for k in before)


def test_rows_into_copies_plain_and_lazy_rows():
    import concurrent.futures
    base = np.arange(40 * 6, dtype=np.uint8).reshape(40, 2, 3)
    lazy = LazyRows(base, np.arange(39, -1, -1))                   # a split: rows in another order
    with concurrent.futures.ThreadPoolExecutor(4) as threads:
        for arr, pool in ((base, None), (base, threads), (lazy, threads), (lazy, None)):
            out = np.zeros((16, 2, 3), np.uint8)
            _rows_into(arr, 5, 21, out, pool)
            np.testing.assert_array_equal(out, np.asarray(arr[np.arange(5, 21)]))


def test_fast_build_matches_the_plain_build(setup, tmp_path):
    """fast=True (folded BatchNorm, the GPU's path, here in float32 on the CPU) stores what the
    plain build stores, up to rounding, for every sample in order (batch 7 does not divide the
    training set: the last batch is partial)."""
    sp, src = setup
    kw = dict(progress=False, fields=("k", "v", "logits"), batch_size=7)
    plain = SourceCache.build(src.model, sp.train, "video", tmp_path / "plain", fast=False, **kw)
    fast = SourceCache.build(src.model, sp.train, "video", tmp_path / "fast", fast=True, **kw)
    assert len(sp.train) % 7 and plain.fields == fast.fields == ("k", "v", "logits")
    for f in plain.fields:
        np.testing.assert_allclose(fast.arrays[f].astype(np.float32), plain.arrays[f].astype(np.float32),
                                   rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(fast.correct, plain.correct)


def test_plain_build_is_the_live_source_bit_for_bit(setup, tmp_path):
    """On the CPU the cache holds exactly what LiveSource computes at the same batch size."""
    sp, src = setup
    cache = SourceCache.build(src.model, sp.train, "video", tmp_path, batch_size=7, progress=False,
                              fields=("k", "logits"))
    live = LiveSource(src.model, "video")
    n = 0
    for batch in make_loader(sp.train, 7, shuffle=False):
        got = live(batch, torch.device("cpu"))
        b = len(got.correct)
        assert np.array_equal(cache.arrays["k"][n:n + b], got.k.half().numpy())
        assert np.array_equal(cache.arrays["logits"][n:n + b], got.logits.numpy())
        assert np.array_equal(cache.correct[n:n + b], got.correct.numpy())
        n += b
    assert n == len(sp.train)


@pytest.mark.parametrize("batch_size", [7, 20])
def test_run_source_reports_setup_and_steady_state_apart(setup, tmp_path, batch_size):
    """``run_source`` times the set-up, the first batch and the steady state apart: the steady
    rate counts the frames of the third batch on (batches 1 and 2 have run when the first is
    stored), and is None when there is no third batch."""
    from dcatkit.frozen_source import run_source
    sp, src = setup
    frames = sp.train.input_shape("video")[0]
    r = run_source(src.model, sp.train, "video", tmp_path, ("k",), batch_size=batch_size, progress=False)
    n = len(sp.train)
    assert 2 * 20 < n < 3 * 20                            # 7: many batches; 20: a partial third batch
    assert r["steady_frames"] == (n - 2 * batch_size) * frames
    assert r["steady_frames_per_s"] > 0 and r["frames_per_s"] == pytest.approx(n * frames / r["seconds"])
    assert 0 <= r["setup_s"] and 0 <= r["first_batch_s"] and r["setup_s"] + r["first_batch_s"] <= r["seconds"]
    few = run_source(src.model, sp.train.subset(range(2 * batch_size)), "video", tmp_path / "few", ("k",),
                     batch_size=batch_size, progress=False)
    assert few["steady_frames"] == 0 and few["steady_frames_per_s"] is None


def test_keys_beyond_float16_are_refused_not_cached_as_inf(setup, tmp_path):
    """The cache stores K and V at half precision: a source whose keys reach past float16's range
    (65504) would train its targets on inf in the cached path only. The build refuses, naming the
    field and the way out (the live source), and leaves nothing behind."""
    import copy

    sp, src = setup
    loud = copy.deepcopy(src.model)
    with torch.no_grad():
        loud.attention.w_k.weight.mul_(1e6)
    live_k = LiveSource(loud, "video")(next(iter(make_loader(sp.train, 8, shuffle=False))), torch.device("cpu")).k
    assert torch.isfinite(live_k).all() and live_k.abs().max() > 65504          # fine live, not in float16
    with pytest.raises(ValueError, match=r"the source's K reaches .* beyond float16's 65504: .*source_cache=False"):
        SourceCache.build(loud, sp.train, "video", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    SourceCache.build(src.model, sp.train, "video", tmp_path, progress=False)    # the usual source: built


def test_a_source_of_other_settings_and_the_same_weights_gets_its_own_cache(tmp_path):
    """Two audio sources with equal weights and another hop length (no weight of its own) compute
    K / V of another length: each gets its own cache, holding its own K (the second was served the
    first's, of the other T_s). Tensors of the same bytes in another shape are another key too."""
    sp = tiny_splits(24, modalities=("imu", "audio"))
    tr = sp.train
    torch.manual_seed(0)
    a = build_model("audio", len(sp.classes), tr.input_shape("audio"), TINY["audio"])
    b = build_model("audio", len(sp.classes), tr.input_shape("audio"), TINY["audio"], hop_length=64)
    b.load_state_dict(a.state_dict())
    assert cache_key(a, tr, "audio") != cache_key(b, tr, "audio")
    ca = SourceCache.build(a, tr, "audio", tmp_path, progress=False)
    cb = SourceCache.build(b, tr, "audio", tmp_path, progress=False)
    batch = next(iter(make_loader(tr, 4, shuffle=False)))
    live = LiveSource(b, "audio")(batch, torch.device("cpu"))
    assert ca.folder != cb.folder and cb(batch, torch.device("cpu")).k.shape == live.k.shape != ca(batch, torch.device("cpu")).k.shape
    reshaped = torch.nn.Linear(3, 2, bias=False)
    other = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        other.weight.copy_(reshaped.weight.reshape(3, 2))                 # the same bytes, transposed shape
    assert cache_key(reshaped, tr, "audio") != cache_key(other, tr, "audio")


def test_the_key_reads_every_input_beyond_the_first_hash_batch():
    """The data's part of the key hashes the inputs in batches of 64: a dataset of more than one
    batch (70 here) gets another key when only its LAST input changes (it lies in the second
    batch), and an unchanged copy keeps the key."""
    from dcatkit.data.dataset import PairedDataset

    rng = np.random.default_rng(0)
    n = 70
    imu = rng.standard_normal((n, 3, 8)).astype(np.float32)
    labels = np.arange(n) % 2

    def dataset(a):
        return PairedDataset({"imu": a}, labels, ["a", "b"], ids=[f"s{i}" for i in range(n)])

    model = torch.nn.Linear(2, 2)
    key = cache_key(model, dataset(imu), "imu")
    assert cache_key(model, dataset(imu.copy()), "imu") == key               # the same bytes: the same key
    last = imu.copy()
    last[-1, 0, 0] += 1.0                                                      # one value of sample 69 changed
    assert cache_key(model, dataset(last), "imu") != key


def test_the_gpu_batches_are_the_cpu_batches_padded(monkeypatch):
    """``_cuda_batches`` (the CUDA build's loader: rows copied by threads into a few pinned buffers
    reused in turn, every batch padded to one shape) runs only on a GPU; here its CUDA calls are
    stand-ins (pinning, streams, events; an upload is a copy of the buffer, as on the device). Each
    batch holds what ``_cpu_batches`` gives, then zeros: uint8 frames and float rows, plain and lazy
    (split) rows, more batches than buffers, a last partial batch, one batch larger than the data."""
    import contextlib

    from dcatkit.data.dataset import PairedDataset
    from dcatkit.frozen_source import _cpu_batches, _cuda_batches

    class Pinned(torch.Tensor):
        def to(self, *a, **k):                      # an upload: a copy, never the pinned buffer itself
            return self.as_subclass(torch.Tensor).clone()

    class Stream:
        def __init__(self, device=None):
            pass

        def wait_event(self, event):
            pass

    class Event:
        def record(self, stream=None):
            pass

        def synchronize(self):
            pass

    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self.as_subclass(Pinned))
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, stream: None)
    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    rng = np.random.default_rng(0)
    for arr, kind in ((rng.integers(0, 256, (23, 2, 3, 4, 4), dtype=np.uint8), "video"),
                      (rng.standard_normal((23, 6, 5)).astype(np.float32), "timeseries")):
        for rows in (arr, LazyRows(arr, np.arange(len(arr))[::-1].copy())):
            ds = PairedDataset({"x": rows}, np.arange(23) % 4, list("abcd"), kinds={"x": kind})
            for bs in (1, 4, 7, 30):
                got, want = list(_cuda_batches(ds, "x", bs, torch.device("cpu"))), list(_cpu_batches(ds, "x", bs))
                assert len(got) == len(want) == -(-23 // bs)
                for (x, y, m), (x_cpu, y_cpu, m_cpu) in zip(got, want):
                    assert m == m_cpu and len(x) == len(y) == bs and x.dtype == x_cpu.dtype
                    assert torch.equal(x[:m], x_cpu) and torch.equal(y[:m], y_cpu), (kind, bs)
                    assert not x[m:].any() and not y[m:].any()


def test_a_cache_records_the_amp_dtype_training_runs_in(monkeypatch):
    """built_with's ``dtype`` is runtime._amp_dtype's (frozen_source kept a copy of it): bf16 on a CUDA
    device with bf16, fp16 on one without, float32 off CUDA or off the fast path."""
    from dcatkit.frozen_source import built_with

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a GPU")
    for bf16, dtype in ((True, "bfloat16"), (False, "float16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
        assert built_with(torch.device("cuda"), fast=True)["dtype"] == dtype
        assert built_with(torch.device("cuda"), fast=False)["dtype"] == "float32"
    assert built_with(torch.device("cpu"), fast=True)["dtype"] == "float32"
