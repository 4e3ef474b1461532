"""Export (ONNX, torch.export) and the Predictor: files match the eager model, batch size
is dynamic, the graphs take raw inputs and scale them exactly as the data pipeline scaled
training data (so a runtime alone gets the Predictor's answer), and a .pt2 is loaded only
when trusted."""
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dcatkit
from dcatkit import deploy
from dcatkit.data import load
from dcatkit.data.synthetic import make_synthetic
from dcatkit.experiment import train_unimodal
from dcatkit.model import build_model
from dcatkit.train import evaluate, predict
from helpers import TINY

SYNTH = dict(n_samples=60, n_subjects=4, duration=1.0, modalities=("imu",))   # IMU windows (6, 32)


def _have_onnx() -> bool:
    try:
        for m in ("onnx", "onnxscript", "onnxruntime"):
            __import__(m)
        return True
    except ImportError:
        return False


needs_onnx = pytest.mark.skipif(not _have_onnx(), reason="onnx / onnxscript / onnxruntime missing: "
                                                         "pip install 'dcatkit[deploy]' (make test installs it)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny IMU model trained through the real pipeline (load -> min-max from train ->
    train_unimodal -> checkpoint), the raw (unscaled) test windows, and its exports."""
    out = tmp_path_factory.mktemp("deploy")
    splits = load("synthetic", **SYNTH)
    raw = make_synthetic(seed=0, **SYNTH)
    where = {i: k for k, i in enumerate(raw["ids"])}
    raw_test = raw["arrays"]["imu"][[where[i] for i in splits.test.ids]]        # (N_test, 6, 32) unscaled
    run = train_unimodal(splits, "imu", preset=TINY["imu"], epochs=1, seed=0, device="cpu",
                         checkpoint=out / "imu.pt", progress=False)
    return {"splits": splits, "raw_test": raw_test, "run": run, "dir": out}


@pytest.fixture(scope="module")
def exported(trained):
    files = {"pt": trained["run"].checkpoint}
    files["pt2"] = dcatkit.export(trained["run"], trained["dir"] / "imu.pt2", check_inputs=trained["splits"].test)
    if _have_onnx():
        files["onnx"] = dcatkit.export(trained["run"].checkpoint, trained["dir"] / "imu.onnx",
                                       check_inputs=trained["raw_test"])
    return files


def _eager_logits(model, x) -> np.ndarray:
    with torch.no_grad():
        return model.cpu().eval()(torch.as_tensor(np.asarray(x))).logits.numpy()


# ------------------------------------------------------------------ exported files vs the eager model


@needs_onnx
def test_onnx_on_raw_windows_matches_eager_on_scaled_ones_at_other_batch_sizes(trained, exported):
    """onnxruntime alone, fed *raw* windows, gives the eager model's output on the pipeline-scaled
    windows: the min-max scaling is inside the graph."""
    import onnxruntime as ort

    res = exported["onnx"]
    assert res.format == "onnx" and res.path.is_file() and "dynamo=True" in res.exporter
    assert res.max_error["random"] <= 1e-4 and res.max_error["real"] <= 1e-4
    assert res.info["input"] == "raw" and res.info["dcatkit_format"] == 2
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    assert isinstance(sess.get_inputs()[0].shape[0], str)           # symbolic (dynamic) batch axis
    model, test, raw = trained["run"].model, trained["splits"].test.arrays["imu"], trained["raw_test"]
    for sl in (slice(0, 5), slice(3, 4), slice(None)):              # exported at batch 2
        logits, probs = sess.run(None, {"x": raw[sl]})
        ref = _eager_logits(model, test[sl])
        np.testing.assert_allclose(logits, ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(ref), 1).numpy(), rtol=1e-4, atol=1e-4)


def test_pt2_on_raw_windows_matches_eager_on_scaled_ones_at_other_batch_sizes(trained, exported):
    res = exported["pt2"]
    assert res.max_error["random"] <= 1e-4 and res.max_error["real"] <= 1e-4
    prog = torch.export.load(str(res.path))
    model, test, raw = trained["run"].model, trained["splits"].test.arrays["imu"], trained["raw_test"]
    for sl in (slice(0, 5), slice(3, 4)):
        with torch.no_grad():
            logits, probs = prog.module()(torch.from_numpy(raw[sl]))
        np.testing.assert_allclose(logits.numpy(), _eager_logits(model, test[sl]), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, atol=1e-6)


def _runtime_vs_predictor_vs_evaluate(path, ds, modality, raw, model):
    """onnxruntime alone on raw samples at two batch sizes == Predictor == evaluate (labels, accuracy)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    whole = sess.run(["logits"], {"x": raw})[0]                      # batch N
    ones = np.concatenate([sess.run(["logits"], {"x": raw[i:i + 1]})[0] for i in range(len(raw))])  # batch 1
    np.testing.assert_allclose(ones, whole, rtol=1e-4, atol=1e-4)
    out = dcatkit.Predictor.load(path).predict(raw)
    np.testing.assert_allclose(out.logits, whole, rtol=1e-4, atol=1e-4)
    _, pred = predict(model, ds, modality, device="cpu")
    np.testing.assert_array_equal(whole.argmax(1), pred)
    np.testing.assert_array_equal(ones.argmax(1), pred)
    acc = float((whole.argmax(1) == ds.labels).mean())
    assert acc == pytest.approx(evaluate(model, ds, modality, device="cpu")["accuracy"])
    return acc


@needs_onnx
def test_imu_onnx_alone_on_raw_windows_agrees_with_predictor_and_evaluate(trained, exported):
    """The issue's case: before, the .onnx fed raw windows agreed with the Predictor on 42.5% of labels."""
    _runtime_vs_predictor_vs_evaluate(exported["onnx"].path, trained["splits"].test, "imu", trained["raw_test"],
                                      trained["run"].model)


@needs_onnx
def test_video_onnx_alone_on_raw_frames_agrees_with_predictor_and_evaluate(tmp_path):
    splits = load("synthetic", n_samples=80, n_subjects=4, duration=1.0, modalities=("video",), frame_size=16,
                  n_frames=4)
    torch.manual_seed(0)
    model = build_model("video", splits.train.num_classes, splits.train.input_shape("video"), TINY["video"])
    res = dcatkit.export(model, tmp_path / "video.onnx", classes=splits.classes, check_inputs=splits.test)
    raw = np.asarray(splits.test.arrays["video"])                    # uint8 frames: what the pipeline gives
    _runtime_vs_predictor_vs_evaluate(res.path, splits.test, "video", raw, model)


def test_minmax_in_the_graph_is_minmax_apply_including_constant_channels():
    """_Inference's in-graph scaling == the pipeline's numpy minmax_apply, bit for bit."""
    from dcatkit.data.preprocess import minmax_apply

    lo = np.array([-2.0, 0.5, 3.0], np.float32)
    hi = np.array([5.0, 0.5, 3.5], np.float32)                      # channel 1 constant -> 0
    x = np.random.default_rng(1).normal(0, 3, (4, 3, 7)).astype(np.float32)
    seen = {}

    class Probe(torch.nn.Module):
        def forward(self, z):
            seen["x"] = z
            return type("O", (), {"logits": z.mean(2)})()

    deploy._Inference(Probe(), {"min": lo.tolist(), "max": hi.tolist()})(torch.from_numpy(x))
    np.testing.assert_array_equal(seen["x"].numpy(), minmax_apply(x, lo, hi))


@needs_onnx
def test_files_carry_their_metadata(trained, exported):
    import onnx

    splits = trained["splits"]
    props = {p.key: json.loads(p.value) for p in onnx.load(str(exported["onnx"].path)).metadata_props}
    extra = {"dcatkit.json": ""}
    torch.export.load(str(exported["pt2"].path), extra_files=extra)
    pt2_props = {k: json.loads(v) for k, v in json.loads(extra["dcatkit.json"]).items()}
    for p in (props, pt2_props):
        assert p["classes"] == splits.classes and p["modality"] == "imu" and p["input_shape"] == [6, 32]
        assert p["normalization"]["min"] == pytest.approx(splits.report["imu_minmax"]["min"])
        assert p["normalization"]["max"] == pytest.approx(splits.report["imu_minmax"]["max"])


def _pt2_metadata(path) -> dict:
    """The dcatkit metadata a .pt2 file carries (what the Predictor reads from it)."""
    extra = {deploy.PT2_EXTRA: ""}
    torch.export.load(str(path), extra_files=extra)
    return {k: json.loads(v) for k, v in json.loads(extra[deploy.PT2_EXTRA]).items()}


def test_the_exported_normalization_says_where_it_came_from_however_it_was_given(trained, exported, tmp_path):
    """The file's normalization keeps the pipeline's "from" ("train": the training split's
    statistics) whether the scaling is read from the model's records (a Run, a checkpoint) or
    given as splits.normalization['imu'], splits.report['imu_minmax'], splits.normalization
    (keyed by modality), a dataset or the Splits. Bounds given bare ({min, max}) for a model
    that records them are its recorded bounds (checked equal), so the file keeps their "from"
    as when they are left out; a bare Classifier given bare bounds has no "from" to keep."""
    sp, run = trained["splits"], trained["run"]
    lo, hi = sp.normalization["imu"]["min"], sp.normalization["imu"]["max"]     # float32 values as floats
    want = {"method": "minmax", "min": lo, "max": hi, "from": "train"}
    assert _pt2_metadata(exported["pt2"].path)["normalization"] == want        # a Run, read from its records
    if "onnx" in exported:                                                     # a checkpoint path, likewise
        import onnx

        props = {p.key: p.value for p in onnx.load(str(exported["onnx"].path)).metadata_props}
        assert json.loads(props["normalization"]) == want
    bounds = {"min": list(lo), "max": list(hi)}
    res = dcatkit.export(run, tmp_path / "given.pt2", normalization=bounds)
    assert res.info["normalization"] == want and _pt2_metadata(res.path)["normalization"] == want
    bare = build_model("imu", sp.train.num_classes, (6, 32), TINY["imu"])
    for given in (sp.normalization["imu"], sp.report["imu_minmax"], sp.normalization, sp.train, sp):
        assert dcatkit.Predictor.load(bare, classes=sp.classes, normalization=given, device="cpu").normalization == want
        assert dcatkit.Predictor.load(run, normalization=given, device="cpu").normalization == want
    unknown = dcatkit.Predictor.load(bare, classes=sp.classes, normalization=bounds, device="cpu").normalization
    assert unknown == {"method": "minmax", "min": lo, "max": hi}


def test_export_refuses_a_file_that_does_not_match_and_leaves_nothing(trained, monkeypatch, tmp_path):
    real = deploy._torch_runner

    def runner(module, device):                                     # the read-back file is off by 1e-3
        run = real(module, device)
        if isinstance(module, deploy._Inference):                   # the eager model stays right
            return run
        return lambda x: tuple(o + 1e-3 for o in run(x))

    monkeypatch.setattr(deploy, "_torch_runner", runner)
    with pytest.raises(RuntimeError, match="differ from the eager model"):
        dcatkit.export(trained["run"], tmp_path / "bad.pt2")
    assert list(tmp_path.iterdir()) == []


def test_export_checks_batch_sizes_other_than_the_traced_one(trained, monkeypatch, tmp_path):
    """A file right at the traced batch size (2) but wrong at others is refused: the check runs
    at batch 1 and example_batch + 1, not only where the program was traced."""
    real = deploy._torch_runner

    def runner(module, device):
        run = real(module, device)
        if isinstance(module, deploy._Inference):
            return run
        return lambda x: run(x) if len(x) == 2 else tuple(o + 1e-3 for o in run(x))

    monkeypatch.setattr(deploy, "_torch_runner", runner)
    with pytest.raises(RuntimeError, match=r"differ from the eager model's on random raw inputs \(batch [13]\)"):
        dcatkit.export(trained["run"], tmp_path / "bad.pt2")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the Predictor


def test_predictor_on_raw_data_scales_like_the_pipeline(trained):
    """Raw windows through the Predictor give the logits the model gives on the
    pipeline-scaled test split, and evaluate()'s predictions and accuracy."""
    run, splits = trained["run"], trained["splits"]
    p = dcatkit.Predictor.load(run.checkpoint, device="cpu")
    out = p.predict(trained["raw_test"])
    np.testing.assert_allclose(out.logits, _eager_logits(run.model, splits.test.arrays["imu"]),
                               rtol=1e-5, atol=1e-6)
    _, pred = predict(run.model, splits.test, "imu", device="cpu")
    np.testing.assert_array_equal(out.indices, pred)
    assert out.labels == [splits.classes[i] for i in pred]
    acc = float((out.indices == splits.test.labels).mean())
    assert acc == pytest.approx(evaluate(run.model, splits.test, "imu", device="cpu")["accuracy"])


def test_predictor_properties_and_one_sample_vs_batch(trained):
    p = dcatkit.Predictor.load(trained["run"].checkpoint, device="cpu")
    assert p.classes == trained["splits"].classes and p.modality == "imu" and p.input_shape == (6, 32)
    raw = trained["raw_test"]
    batch = p.predict(raw[:4])
    assert batch.probabilities.shape == (4, len(p.classes)) and len(batch.labels) == 4
    np.testing.assert_allclose(batch.probabilities.sum(1), 1.0, atol=1e-6)
    for i in range(4):
        one = p.predict(raw[i])                                      # (C, L): a batch of one
        assert one.labels == [batch.labels[i]]
        np.testing.assert_allclose(one.probabilities[0], batch.probabilities[i], rtol=1e-5, atol=1e-6)
    torch_in = p.predict(torch.from_numpy(raw[:4].astype(np.float64)))  # torch / float64 accepted
    np.testing.assert_allclose(torch_in.probabilities, batch.probabilities, rtol=1e-5, atol=1e-6)


def test_predictors_from_checkpoint_pt2_and_onnx_agree(trained, exported):
    raw = trained["raw_test"]
    ref = dcatkit.Predictor.load(trained["run"].checkpoint, device="cpu").predict(raw)
    in_memory = dataclasses.replace(trained["run"], checkpoint=None)   # classes, scaling from its provenance
    kinds = ["pt2", "onnx"] if "onnx" in exported else ["pt2"]
    for k in ["run", *kinds]:
        p = dcatkit.Predictor.load(in_memory if k == "run" else exported[k].path, device="cpu", trusted=True)
        assert (p.classes, p.modality, p.input_shape) == (trained["splits"].classes, "imu", (6, 32))
        out = p.predict(raw)
        assert out.labels == ref.labels, k
        np.testing.assert_allclose(out.probabilities, ref.probabilities, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out.logits, ref.logits, rtol=1e-4, atol=1e-4)


def test_bare_classifier_needs_classes_and_normalization(trained, tmp_path):
    run, splits = trained["run"], trained["splits"]
    model = build_model("imu", splits.train.num_classes, (6, 32), TINY["imu"])
    model.load_state_dict(run.model.state_dict())
    with pytest.raises(ValueError, match="pass classes="):
        dcatkit.Predictor.load(model, normalization=None)
    with pytest.raises(ValueError, match=r"normalization=splits.report\['imu_minmax'\]"):
        dcatkit.Predictor.load(model, classes=splits.classes)
    with pytest.raises(ValueError, match="3 class names for a model with"):
        dcatkit.Predictor.load(model, classes=["a", "b", "c"], normalization=None)
    with pytest.raises(ValueError, match="one bound per channel"):
        dcatkit.Predictor.load(model, classes=splits.classes, normalization={"min": [0.0] * 3, "max": [1.0] * 3})
    p = dcatkit.Predictor.load(model, classes=splits.classes, normalization=splits.report["imu_minmax"],
                               device="cpu")
    ref = dcatkit.Predictor.load(run.checkpoint, device="cpu").predict(trained["raw_test"])
    np.testing.assert_allclose(p.predict(trained["raw_test"]).logits, ref.logits, rtol=1e-5, atol=1e-6)
    res = dcatkit.export(model, tmp_path / "bare.pt2", classes=splits.classes, normalization=splits.train)
    assert res.info["normalization"]["min"] == pytest.approx(splits.report["imu_minmax"]["min"])


@needs_onnx
def test_video_export_round_trip_with_uint8_frames(tmp_path):
    torch.manual_seed(0)
    model = build_model("video", 3, (2, 3, 16, 16), TINY["video"])
    res = dcatkit.export(model, tmp_path / "video.onnx", classes=["x", "y", "z"])
    assert res.max_error["random"] <= 1e-4 and res.info["normalization"] is None
    frames = np.random.default_rng(0).integers(0, 256, (3, 2, 3, 16, 16), dtype=np.uint8)
    p = dcatkit.Predictor.load(res.path)
    np.testing.assert_allclose(p.predict(frames).logits, _eager_logits(model, frames), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(p.predict(frames.astype(np.int64)).logits, p.predict(frames).logits)
    with pytest.raises(ValueError, match=r"graph takes uint8 frames .*got float64 frames in \[0, 1\].*"
                                         r"input_dtype='float32'") as e:
        p.predict(frames / 255.0)
    assert "as dcatkit.data gives them" not in str(e.value)          # from_arrays accepts float frames
    with pytest.raises(ValueError, match=r"look like 0-255 values: pass np.round\(x\).astype\(np.uint8\)"):
        p.predict(frames.astype(np.float32))
    for value in (256, -1):                  # integers outside [0, 255] would wrap around in uint8
        bad = frames.astype(np.int64)
        bad[1, 0, 2, 3, 4] = value
        with pytest.raises(ValueError, match=rf"uint8 RGB values in \[0, 255\].*range \[{min(value, 0)}, {max(value, 255)}\]"):
            p.predict(bad)


# ------------------------------------------------------------------ bad input


def test_wrong_input_shape_says_expected_and_found(trained):
    p = dcatkit.Predictor.load(trained["run"].checkpoint, device="cpu")
    expected = r"one sample of shape \(6, 32\) or a batch \(B, 6, 32\), got an array of shape \(4, 32\)"
    with pytest.raises(ValueError, match=expected):
        p.predict(np.zeros((4, 32), np.float32))
    with pytest.raises(ValueError, match=r"got an array of shape \(2, 6, 31\)"):
        p.predict(np.zeros((2, 6, 31), np.float32))
    with pytest.raises(ValueError, match="empty batch"):
        p.predict(np.zeros((0, 6, 32), np.float32))
    bad = np.zeros((2, 6, 32), np.float32)
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        p.predict(bad)
    huge = np.zeros((2, 6, 32), np.float64)
    huge[0, 1, 2], huge[1, 0, 0] = 1e300, -5e39                       # finite, beyond float32
    with pytest.raises(ValueError, match=r"2 values beyond float32's range \(largest magnitude 1e\+300; float32 holds "
                                         r"up to 3.4e\+38\)"):
        p.predict(huge)
    with pytest.raises(ValueError, match="real numbers"):
        p.predict(np.array([["a"] * 32] * 6))
    with pytest.raises(ValueError, match="real numbers .* got dtype bool"):      # not 0 / 1 windows
        p.predict(np.ones((2, 6, 32), bool))


def test_the_input_rate_is_checked_when_given_on_every_backend(trained, exported):
    """A raw array carries no rate; a window of the right length at another rate is another
    stretch of time, classified without a word. Given sample_rate=, every backend's Predictor
    refuses a rate other than the training data's (which the files record) and predicts as
    before at that rate."""
    rate = float(trained["splits"].train.sample_rates["imu"])
    raw = trained["raw_test"][:3]
    ref = dcatkit.Predictor.load(trained["run"].checkpoint, device="cpu").predict(raw)
    for k in exported:
        p = dcatkit.Predictor.load(exported[k] if k == "pt" else exported[k].path, device="cpu", trusted=True)
        assert p.sample_rate == rate, k
        assert p.predict(raw, sample_rate=rate).labels == ref.labels
        with pytest.raises(ValueError, match=f"trained on data at {rate:g} Hz; this input is at {2 * rate:g} Hz"):
            p.predict(raw, sample_rate=2 * rate)
        with pytest.raises(ValueError, match="trained on data at"):                 # 1% off is another rate
            p.predict(raw, sample_rate=1.01 * rate)
    unknown = dcatkit.Predictor.load(trained["run"].checkpoint, device="cpu")
    unknown.info = {**unknown.info, "sample_rates": {}}
    assert unknown.sample_rate is None and unknown.predict(raw).labels == ref.labels
    with pytest.raises(ValueError, match="records no sample rate"):
        unknown.predict(raw, sample_rate=rate)


def test_unknown_or_missing_or_foreign_files(tmp_path, trained):
    with pytest.raises(ValueError, match=r"unknown file type '.h5'.*\.pt.*\.onnx.*\.pt2"):
        dcatkit.Predictor.load(tmp_path / "model.h5")
    with pytest.raises(FileNotFoundError, match="no model file"):
        dcatkit.Predictor.load(tmp_path / "none.onnx")
    with pytest.raises(ValueError, match="unknown export file type '.tflite'"):
        dcatkit.export(trained["run"], tmp_path / "m.tflite")
    garbage = tmp_path / "g.pt2"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable torch.export program"):
        dcatkit.Predictor.load(garbage, trusted=True)
    plain = tmp_path / "plain.pt2"                                   # a torch.export file without metadata
    torch.export.save(torch.export.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),)), str(plain))
    with pytest.raises(ValueError, match="carries no dcatkit.json"):
        dcatkit.Predictor.load(plain, trusted=True)
    with pytest.raises(TypeError, match="expected a Run, a Classifier or a checkpoint path"):
        dcatkit.export(42, tmp_path / "m.onnx")
    (tmp_path / "old.pt2").mkdir()                                   # a folder where the file goes
    with pytest.raises(ValueError, match=r"export path .*old.pt2 is a folder"):
        dcatkit.export(trained["run"], tmp_path / "old.pt2")
    with pytest.raises(ValueError, match=r"g.pt2 is a file, not a folder"):      # a path under a file
        dcatkit.export(trained["run"], garbage / "m.pt2")


def test_missing_optional_dependency_says_how_to_install(trained, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)           # import onnxruntime -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'dcatkit\[deploy\]'"):
        dcatkit.export(trained["run"], tmp_path / "m.onnx")
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ImportError, match="optional package 'onnxruntime'"):
        dcatkit.Predictor.load(tmp_path / "m.onnx")


def test_onnx_export_on_a_torch_whose_exporter_fails_says_so_before_any_work(trained, monkeypatch, tmp_path):
    """torch 2.5.1 and 2.6.0 fail inside the ONNX exporter on BatchNorm (tried 2026-12-05); 2.7.1
    passes this file. On an older torch, export(.onnx) stops at once naming both versions and the
    way out, and writes nothing; .pt2 export goes on working there."""
    from torch.torch_version import TorchVersion

    assert deploy.ONNX_MIN_TORCH == "2.7"
    for ok in ("2.7.1", "2.7.0+cu126", "2.14.1"):
        deploy._check_onnx_torch(ok)
    for old in ("2.6.0+cu124", "2.5.1"):
        with pytest.raises(RuntimeError, match=rf"torch >= 2\.7, found torch {re.escape(old)}.*\.pt2"):
            deploy._check_onnx_torch(old)
    monkeypatch.setattr(torch, "__version__", TorchVersion("2.6.0"))
    with pytest.raises(RuntimeError, match=r"needs torch >= 2\.7"):
        dcatkit.export(trained["run"], tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ old files, safe loading


def test_format_1_files_are_still_scaled_by_the_predictor(trained):
    """A format-1 file's graph took scaled input: the Predictor scales for it (and only for it)."""
    run = trained["run"]
    p = dcatkit.Predictor.load(run.checkpoint, device="cpu")
    old = {k: v for k, v in p.info.items() if k != "input"}
    old["dcatkit_format"] = 1
    bare = deploy._torch_runner(deploy._Inference(run.model.cpu().eval()), torch.device("cpu"))   # no scaling
    q = deploy.Predictor(bare, old, "torch")
    np.testing.assert_allclose(q.predict(trained["raw_test"]).logits, p.predict(trained["raw_test"]).logits,
                               rtol=1e-5, atol=1e-6)


def test_a_file_whose_format_is_not_a_whole_number_from_1_is_refused_at_load(trained, tmp_path):
    """dcatkit_format is a whole number >= 1: a file saying 0, -1, true, 1.5 or "2" is refused
    when loaded, naming what it says; format 1 (a graph that took scaled input, written before
    the graph scaled raw input) loads, and the Predictor scales for it."""
    run, splits = trained["run"], trained["splits"]
    bare = build_model("imu", splits.train.num_classes, (6, 32), TINY["imu"])
    bare.load_state_dict(run.model.state_dict())
    plain = dcatkit.export(bare, tmp_path / "plain.pt2", classes=splits.classes, normalization=None)
    program = torch.export.load(str(plain.path))                    # a graph without the scaling: format 1's
    old = {k: v for k, v in plain.info.items() if k != "input"}
    old["normalization"] = splits.normalization["imu"]

    def written(fmt, name):
        meta = {k: json.dumps(v) for k, v in {**old, "dcatkit_format": fmt}.items()}
        torch.export.save(program, str(tmp_path / name), extra_files={deploy.PT2_EXTRA: json.dumps(meta)})
        return tmp_path / name

    raw = trained["raw_test"]
    ref = dcatkit.Predictor.load(run.checkpoint, device="cpu").predict(raw)
    p = dcatkit.Predictor.load(written(1, "one.pt2"), trusted=True, device="cpu")
    assert p.info["dcatkit_format"] == 1
    np.testing.assert_allclose(p.predict(raw).logits, ref.logits, rtol=1e-4, atol=1e-4)
    for i, fmt in enumerate((0, -1, True, 1.5, "2")):
        said = re.escape(repr(fmt))
        with pytest.raises(ValueError, match=rf"dcatkit_format must be a whole number >= 1, got {said}$"):
            dcatkit.Predictor.load(written(fmt, f"bad{i}.pt2"), trusted=True, device="cpu")


class _WritesMarker:
    """Unpickling this runs code: it writes a file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "pwned"))


def _crafted_pt2(good: Path, out: Path, marker: Path) -> Path:
    """A copy of a dcatkit .pt2 whose first weight is a pickle (``use_pickle``) that writes ``marker``
    when torch.export.load reads it. Archives of torch < 2.9 keep all weights in one pickle
    (torch 2.8: ``data/weights/model.pt``; 2.5-2.7: ``serialized_state_dict.pt``): that one is replaced."""
    import pickle
    import zipfile

    with zipfile.ZipFile(good) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    cfg_name = next((n for n in members if n.endswith("weights_config.json")), None)
    if cfg_name is None:
        name = next(n for n in members if n.endswith(("data/weights/model.pt", "serialized_state_dict.pt")))
        members[name] = pickle.dumps(_WritesMarker(marker))
        with zipfile.ZipFile(out, "w") as z:
            for n, data in members.items():
                z.writestr(n, data)
        return out
    cfg = json.loads(members[cfg_name])
    first = next(iter(cfg["config"]))
    folder = cfg_name.rsplit("/", 1)[0] + "/"
    cfg["config"][first]["use_pickle"] = True
    cfg["config"][first]["path_name"] = "evil.pt"
    members[cfg_name] = json.dumps(cfg).encode()
    members[folder + "evil.pt"] = pickle.dumps(_WritesMarker(marker))
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out


def test_a_pt2_is_not_loaded_unless_trusted_and_a_crafted_one_runs_no_code(trained, exported, tmp_path):
    marker = tmp_path / "marker.txt"
    evil = _crafted_pt2(exported["pt2"].path, tmp_path / "evil.pt2", marker)
    with pytest.raises(deploy.UntrustedFile, match=r"trusted=True.*\.onnx"):
        dcatkit.Predictor.load(evil)
    assert not marker.exists()
    with pytest.raises(ValueError, match="trusted=True"):                # dcatkit's own file: same rule
        dcatkit.Predictor.load(exported["pt2"].path)
    # the crafted file really is dangerous: loading it trusted runs its code (here: writes the marker)
    try:
        dcatkit.Predictor.load(evil, trusted=True)
    except Exception:
        pass
    assert marker.read_text() == "pwned"


def test_checkpoints_and_onnx_need_no_flag_and_never_unpickle_code(trained, exported, tmp_path):
    marker = tmp_path / "marker.txt"
    dcatkit.Predictor.load(trained["run"].checkpoint, device="cpu")
    if "onnx" in exported:
        dcatkit.Predictor.load(exported["onnx"].path)
    bad = tmp_path / "evil.pt"
    torch.save({"meta": _WritesMarker(marker)}, bad)
    with pytest.raises(Exception):
        dcatkit.Predictor.load(bad, device="cpu")
    assert not marker.exists()


def test_real_check_inputs_from_a_dataset_are_its_raw_windows(trained):
    """export's check on a dataset (pipeline-scaled items) feeds the graph raw windows: the
    items unscaled with the training bounds are the raw test windows, a constant channel
    comes back as its one value, and unscaling inverts minmax_apply."""
    from dcatkit.data.preprocess import minmax_apply

    _, info, _ = deploy._resolve(trained["run"], None, "auto")
    got = deploy._real_inputs(trained["splits"].test, info, limit=5)
    np.testing.assert_allclose(got, trained["raw_test"][:5], rtol=1e-4, atol=1e-4)
    lo, hi = np.float32([-1.0, 2.0, 3.0]), np.float32([1.0, 6.0, 3.0])
    x = np.random.default_rng(0).uniform(-2, 8, (4, 3, 5)).astype(np.float32)
    x[:, 2] = 3.0
    norm = {"normalization": {"min": lo.tolist(), "max": hi.tolist()}}
    np.testing.assert_allclose(deploy._unscale(minmax_apply(x, lo, hi), norm), x, rtol=1e-5, atol=1e-5)


def test_what_a_file_says_about_itself_is_checked(trained, exported, tmp_path, monkeypatch):
    """A file of a newer format is refused; classes given for an exported file (which carries
    its own), or classes other than those a checkpoint records, are refused; a model of another
    modality name but of kind video takes uint8 frames; normalisation other than min-max is
    refused; an export whose metadata does not read back as written is not put in place."""
    props = {"dcatkit_format": "3", "classes": '["a"]', "modality": '"imu"'}
    with pytest.raises(ValueError, match=r"newer dcatkit \(format 3, this one reads 2\)"):
        deploy._info_from_strings(props, tmp_path / "x.onnx")
    names = list(trained["splits"].classes)
    with pytest.raises(ValueError, match="carries its own classes"):
        dcatkit.Predictor.load(exported["pt2"].path, classes=names, trusted=True)
    with pytest.raises(ValueError, match="differ from the classes the model was trained on"):
        dcatkit.Predictor.load(trained["run"].checkpoint, classes=names[::-1], device="cpu")
    torch.manual_seed(0)
    cam = build_model("cam", 3, (2, 3, 16, 16), TINY["video"], kind="video")
    assert dcatkit.Predictor.load(cam, classes=["x", "y", "z"], device="cpu").info["input_dtype"] == "uint8"
    norm = dict(trained["splits"].report["imu_minmax"], method="zscore")
    with pytest.raises(ValueError, match="per-channel min-max bounds"):
        dcatkit.Predictor.load(trained["run"].model, classes=names, normalization=norm, device="cpu")
    real = deploy._info_from_strings
    monkeypatch.setattr(deploy, "_info_from_strings", lambda props, path: {**real(props, path), "classes": ["?"]})
    monkeypatch.setattr(deploy, "_load_pt2", lambda path, trusted=False: (torch.export.load(str(path)),
                                                                          {"classes": ["?"]}))
    with pytest.raises(RuntimeError, match="metadata read back"):
        dcatkit.export(trained["run"], tmp_path / "m.pt2")
    assert not any(tmp_path.glob("m.pt2*"))


def test_a_normalization_for_a_model_that_is_not_timeseries_is_refused(tmp_path):
    """Min-max scaling is per channel of (C, L) timeseries windows; the pipeline never scales
    video frames, so bounds given for a video model (even one per RGB channel) are refused,
    by the Predictor and by export, rather than applied to its uint8 frames."""
    torch.manual_seed(0)
    model = build_model("video", 3, (2, 3, 16, 16), TINY["video"])
    rgb = {"min": [0.0, 0.0, 0.0], "max": [255.0, 255.0, 255.0]}
    with pytest.raises(ValueError, match=r"per channel of timeseries windows.*kind 'video'"):
        dcatkit.Predictor.load(model, classes=["x", "y", "z"], normalization=rgb, device="cpu")
    with pytest.raises(ValueError, match=r"per channel of timeseries windows.*kind 'video'"):
        dcatkit.export(model, tmp_path / "video.pt2", classes=["x", "y", "z"], normalization=rgb)
    assert not any(tmp_path.iterdir())


def test_integer_pcm_audio_is_refused_with_the_scaling_to_use():
    """An audio model trained on float waveforms in [-1, 1] (what dcatkit.data reads) given int16
    PCM would classify a signal ~90 dB louder without a word (uint8 PCM is also offset by 128):
    refused, naming the conversion. The float waveform is accepted."""
    torch.manual_seed(0)
    model = build_model("audio", 3, (8000,), TINY["audio"])
    p = dcatkit.Predictor.load(model, device="cpu", classes=["a", "b", "c"], normalization=None)
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 8000)).astype(np.float32)
    assert len(p.predict(wave).labels) == 2
    with pytest.raises(ValueError, match=r"float waveform in \[-1, 1\] .* got integer samples \(int16, range "
                                         r"\[-16\d\d\d, 16\d\d\d\]\): PCM audio; pass x / 32768"):
        p.predict((wave * 32768).astype(np.int16))
    with pytest.raises(ValueError, match=r"got integer samples \(uint8.*pass \(x - 128\) / 128"):
        p.predict((wave[0] * 128 + 128).astype(np.uint8))


def test_pcm_in_int64_or_int32_of_24_bit_values_is_refused_with_the_scaling_its_values_need():
    """np.array of Python ints is int64: the Predictor said x / 9223372036854775808 for it (a clip
    far too quiet, accepted after); it now goes by the values. An int32 of 24-bit samples not shifted
    to the top bits (unpacked by hand) is named beside the 32-bit rule."""
    torch.manual_seed(0)
    model = build_model("audio", 3, (8000,), TINY["audio"])
    p = dcatkit.Predictor.load(model, device="cpu", classes=["a", "b", "c"], normalization=None)
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 8000)
    with pytest.raises(ValueError, match=r"got integer samples \(int64, .*pass x / 32768 if it is 16-bit PCM, as its "
                                         r"peak suggests \(another bit depth: x / 2\*\*\(depth - 1\)"):
        p.predict(np.round(wave * 32767).astype(np.int64))
    with pytest.raises(ValueError, match=r"\(int32, .*pass x / 2147483648 \(32-bit PCM; values within \+-8388608 "
                                         r"may be 24-bit samples not shifted to 32 bits: then x / 8388608\)"):
        p.predict(np.round(wave * 2 ** 23).astype(np.int32))
    with pytest.raises(ValueError, match=r"\(int32, .*pass x / 2147483648 \(32-bit PCM\)$"):
        p.predict(np.round(wave * 2 ** 31).astype(np.int32))


def test_a_recorded_scaling_is_not_replaced_and_a_run_reads_its_own_records(trained, tmp_path):
    """normalization= given by hand beside a model that records its training data's scaling: the
    same values are accepted, other values (or None) refused, as classes= is. A Run exported or
    loaded after another run wrote to its checkpoint path keeps its own class names (they came from
    the file first, so the first run was labelled with the second's classes)."""
    run, sp = trained["run"], trained["splits"]
    own = sp.normalization["imu"]
    p = dcatkit.Predictor.load(run, device="cpu", normalization=own)
    assert p.normalization == dcatkit.Predictor.load(run, device="cpu").normalization
    bounds = {"min": list(own["min"]), "max": list(own["max"])}                 # the same bounds, no 'from'
    dcatkit.Predictor.load(run, device="cpu", normalization=bounds)
    for other in (None, {"min": [0.0] * len(own["min"]), "max": [1.0] * len(own["max"])}):
        with pytest.raises(ValueError, match="differs from the scaling the imu model recorded"):
            dcatkit.Predictor.load(run, device="cpu", normalization=other)
    first = train_unimodal(sp, "imu", preset=TINY["imu"].with_(epochs=1), seed=1, progress=False,
                           checkpoint=tmp_path / "same.pt")
    renamed = dataclasses.replace(sp, train=sp.train.subset(range(len(sp.train))))
    renamed.train.classes = [f"other{i}" for i in range(len(sp.train.classes))]
    train_unimodal(renamed, "imu", preset=TINY["imu"].with_(epochs=1), seed=2, progress=False,
                   checkpoint=tmp_path / "same.pt")                     # another run, the same path
    assert dcatkit.Predictor.load(first, device="cpu").classes == list(sp.train.classes)
    assert dcatkit.Predictor.load(tmp_path / "same.pt", device="cpu").classes[0] == "other0"


def test_given_bounds_a_little_off_the_recorded_ones_are_another_scaling(trained, tmp_path):
    """normalization= beside a model that records its scaling is compared bound by bound at
    rtol 1e-6 (float32 rounding): the recorded bounds, or the same recomputed within 1e-7
    relative, are accepted; bounds 1e-3 or 1e-5 relative off are another scaling and refused,
    by the Predictor and by export (before any work)."""
    run = trained["run"]
    own = trained["splits"].normalization["imu"]

    def scaled(rel):
        return {k: [float(v) * (1 + rel) for v in own[k]] for k in ("min", "max")}

    recorded = dcatkit.Predictor.load(run, device="cpu").normalization
    for same in (own, scaled(0.0), scaled(1e-7), scaled(-1e-7)):
        p = dcatkit.Predictor.load(run, device="cpu", normalization=same)
        np.testing.assert_allclose(p.normalization["min"], recorded["min"], rtol=2e-7, atol=0)
    for rel in (1e-3, -1e-3, 1e-5):
        with pytest.raises(ValueError, match="differs from the scaling the imu model recorded from its training"):
            dcatkit.Predictor.load(run, device="cpu", normalization=scaled(rel))
        with pytest.raises(ValueError, match="differs from the scaling the imu model recorded"):
            dcatkit.export(run, tmp_path / "off.pt2", normalization=scaled(rel))
    only_one = {"min": own["min"], "max": own["max"][:-1] + [own["max"][-1] * (1 + 1e-3)]}   # one bound off
    with pytest.raises(ValueError, match="differs from the scaling"):
        dcatkit.Predictor.load(run, device="cpu", normalization=only_one)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ frames, waveforms and files that do not fit


def _float_frame_splits():
    """Video given as float RGB in [0, 1], which from_arrays accepts (the frame encoder reads
    floats as they are and scales only uint8 by 1/255)."""
    from dcatkit.data import from_arrays

    rng = np.random.default_rng(0)
    labels = np.arange(24) % 3
    cam = rng.uniform(0, 1, (24, 2, 3, 16, 16)).astype(np.float32)
    return from_arrays({"cam": cam}, labels, groups="samples", kinds={"cam": "video"}, classes=["x", "y", "z"])


@pytest.mark.parametrize("suffix", [".pt2", pytest.param(".onnx", marks=needs_onnx)])
def test_a_model_of_float_frames_exports_a_graph_that_takes_them_and_reproduces_evaluate(tmp_path, suffix):
    """A video model trained on float frames in [0, 1] (from_arrays takes them): a uint8 graph
    cannot take the frames it was evaluated on, so export(check_inputs=splits.test) says how
    (input_dtype='float32'); the float32 graph then gives the eager model's logits on those
    frames (and evaluate()'s accuracy), and on uint8 frames (/ 255, as the frame encoder scales
    them). The eager Predictor takes either dtype, as the model does."""
    splits = _float_frame_splits()
    test = splits.test
    frames = np.asarray(test.arrays["cam"])
    torch.manual_seed(0)
    model = build_model("cam", 3, (2, 3, 16, 16), TINY["video"], kind="video").eval()
    with pytest.raises(ValueError, match=r"check_inputs .*graph takes uint8 frames.*input_dtype='float32'"):
        dcatkit.export(model, tmp_path / f"u8{suffix}", classes=splits.classes, check_inputs=test)
    assert not any(tmp_path.iterdir())
    res = dcatkit.export(model, tmp_path / f"cam{suffix}", classes=splits.classes, check_inputs=test,
                         input_dtype="float32")
    assert res.info["input_dtype"] == "float32" and res.max_error["real"] <= 1e-4
    p = dcatkit.Predictor.load(res.path, trusted=True, device="cpu")
    out = p.predict(frames)
    np.testing.assert_allclose(out.logits, _eager_logits(model, frames), rtol=1e-4, atol=1e-4)
    _, pred = predict(model, test, "cam", device="cpu")
    np.testing.assert_array_equal(out.indices, pred)
    acc = evaluate(model, test, "cam", device="cpu")["accuracy"]
    assert float((out.indices == test.labels).mean()) == pytest.approx(acc)
    u8 = np.round(frames * 255).astype(np.uint8)
    np.testing.assert_allclose(p.predict(u8).logits, _eager_logits(model, u8), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"reads float frames as RGB values in \[0, 1\].*got float32 frames in "
                                         r"\[0\.0\d*, 25\d\.?\d*\]: pass uint8 frames"):
        p.predict(frames * 255)
    eager = dcatkit.Predictor.load(model, classes=splits.classes, device="cpu")   # the model reads both
    np.testing.assert_allclose(eager.predict(frames).logits, _eager_logits(model, frames), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eager.predict(u8).logits, _eager_logits(model, u8), rtol=1e-5, atol=1e-6)


def test_float_frames_with_negative_values_are_refused_as_normalised_not_classified():
    """Float frames are RGB values in [0, 1]; the frame encoder applies the ImageNet mean / std
    itself. Frames in [-1, 1] (normalised already, or another scale), or with one value below 0,
    would be normalised twice and classified without a word: refused by the eager model's
    Predictor and by a float32 graph's, saying what was found and to pass the frames from before
    that normalisation (not "divide by 255"); a uint8 graph's refusal says the same rather than
    np.round(x * 255).astype(np.uint8), which wraps negative values around."""
    torch.manual_seed(0)
    model = build_model("cam", 3, (2, 3, 16, 16), TINY["video"], kind="video").eval()
    u = np.random.default_rng(0).uniform(0.0, 1.0, (2, 2, 3, 16, 16)).astype(np.float32)
    u[0, 0, 0, 0, 0], u[1, 1, 2, 15, 15] = 0.0, 1.0                              # exactly [0, 1]
    signed = 2 * u - 1                                                          # exactly [-1, 1]
    below = u.copy()
    below[1, 0, 1, 2, 3] = -0.01                                                # [-0.01, 1]
    classes = ["x", "y", "z"]
    eager = dcatkit.Predictor.load(model, classes=classes, device="cpu")
    cpu = torch.device("cpu")
    runner = deploy._torch_runner(deploy._Inference(model), cpu)
    graph = deploy.Predictor(runner, deploy._resolve(model, classes, "auto", "float32")[1], "torch.export")
    for p in (eager, graph):
        np.testing.assert_allclose(p.predict(u).logits, _eager_logits(model, u), rtol=1e-5, atol=1e-6)
        for bad, found in ((signed, r"\[-1, 1\]"), (below, r"\[-0\.01, 1\]")):
            with pytest.raises(ValueError, match=r"the cam model reads float frames as RGB values in \[0, 1\] .*"
                                                 rf"got float32 frames in {found}: negative values, so not RGB "
                                                 r"values: frames already normalised .*ImageNet mean and std "
                                                 r"itself: pass the frames from before that normalisation, uint8 "
                                                 r"RGB values 0-255 or float RGB in \[0, 1\]$") as e:
                p.predict(bad)
            assert "divide by 255" not in str(e.value)
    uint8 = deploy.Predictor(runner, deploy._resolve(model, classes, "auto")[1], "torch.export")
    with pytest.raises(ValueError, match=r"graph takes uint8 frames .*got float32 frames in \[-1, 1\]: negative "
                                         r"values.*before that normalisation, as uint8 RGB values 0-255$") as e:
        uint8.predict(signed)
    assert "astype" not in str(e.value)


def test_a_model_trained_on_float_frames_records_it_and_exports_a_float_graph(tmp_path):
    """train_unimodal on from_arrays' float frames records input_dtype float32 in the model's
    provenance, so export (no input_dtype=) writes a graph that takes those frames and
    check_inputs=splits.test passes; the kit's own uint8 frames record uint8."""
    from dcatkit.experiment import train_unimodal

    splits = _float_frame_splits()
    run = train_unimodal(splits, "cam", preset=TINY["video"], epochs=1, seed=0, progress=False, device="cpu")
    assert run.model.provenance["input_dtype"] == "float32"
    res = dcatkit.export(run, tmp_path / "cam.pt2", check_inputs=splits.test)
    assert res.info["input_dtype"] == "float32" and res.max_error["real"] <= 1e-4
    frames = (np.asarray(splits.test.arrays["cam"]) * 255).round().astype(np.uint8)
    u8 = _float_frame_splits()
    u8.train.arrays["cam"] = (np.asarray(u8.train.arrays["cam"]) * 255).round().astype(np.uint8)
    run8 = train_unimodal(u8, "cam", preset=TINY["video"], epochs=1, seed=0, progress=False, device="cpu")
    assert run8.model.provenance["input_dtype"] == "uint8"
    assert dcatkit.export(run8, tmp_path / "cam8.pt2", check_inputs=frames).info["input_dtype"] == "uint8"


def test_the_graph_input_dtype_follows_a_record_and_is_checked(tmp_path):
    """A video model whose records say it was trained on float frames exports a float32 graph by
    itself; input_dtype is uint8 or float32 for video, float32 for everything else."""
    torch.manual_seed(0)
    model = build_model("cam", 3, (2, 3, 16, 16), TINY["video"], kind="video")
    assert deploy._resolve(model, ["x", "y", "z"], "auto")[1]["input_dtype"] == "uint8"
    model.provenance = {"input_dtype": "float32"}
    assert deploy._resolve(model, ["x", "y", "z"], "auto")[1]["input_dtype"] == "float32"
    assert deploy._resolve(model, ["x", "y", "z"], "auto", "uint8")[1]["input_dtype"] == "uint8"
    with pytest.raises(ValueError, match=r"input_dtype='float16': a video model \('cam'\) takes 'uint8' or "
                                         r"'float32'"):
        dcatkit.export(model, tmp_path / "cam.pt2", classes=["x", "y", "z"], input_dtype="float16")
    imu = build_model("imu", 3, (6, 32), TINY["imu"])
    with pytest.raises(ValueError, match=r"a timeseries model \('imu'\) takes 'float32'"):
        dcatkit.export(imu, tmp_path / "imu.pt2", classes=["x", "y", "z"], normalization=None, input_dtype="uint8")
    assert not any(tmp_path.iterdir())


def test_float_audio_at_pcm_scale_is_refused_and_in_range_audio_accepted():
    """A float waveform at PCM scale (wav.astype(np.float32): |x| up to 32768) for a model
    trained on [-1, 1] puts every sample in one class: refused with the peak and the scaling.
    The cut is loose (16): a waveform peaking above 1 (the synthetic data's reach 1.34) is
    accepted, and so are log-mel 'features' and audio spectrograms of any size."""
    torch.manual_seed(0)
    model = build_model("audio", 3, (8000,), TINY["audio"])
    p = dcatkit.Predictor.load(model, device="cpu", classes=["a", "b", "c"], normalization=None)
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 8000)).astype(np.float32)
    wave[0, 10] = 1.5
    assert len(p.predict(wave).labels) == 2
    with pytest.raises(ValueError, match=r"expected float samples in \[-1, 1\] \(peak here 49152;.*"
                                         r"wav.astype\(np.float32\).*pass x / 32768"):
        p.predict(wave * 32768)
    with pytest.raises(ValueError, match=r"peak here 17;"):
        p.predict(np.where(np.arange(8000) == 3, 17.0, wave[1]).astype(np.float32))
    feats = build_model("mel", 3, (5, 7), TINY["imu"].with_(encoder={"hidden": 8, "d_model": 16}), kind="features")
    q = dcatkit.Predictor.load(feats, device="cpu", classes=["a", "b", "c"], normalization=None)
    assert len(q.predict(np.full((2, 5, 7), 100.0, np.float32)).labels) == 2    # log-mel values: no cut
    info = {"input_shape": [32, 40], "modality": "spec", "kind": "audio", "input_dtype": "float32"}
    assert deploy._as_batch(np.full((2, 32, 40), 80.0, np.float32), info)[0].shape == (2, 32, 40)


def test_stereo_audio_in_samples_channels_layout_is_refused_naming_the_mono_mix():
    """(N, 2) is stereo as soundfile reads it: refused, naming x.mean(axis=1). (2, N), as
    torchaudio.load gives it, has a batch's shape and is read as two clips: predict's docstring
    says audio must be mono."""
    torch.manual_seed(0)
    model = build_model("audio", 3, (8000,), TINY["audio"])
    p = dcatkit.Predictor.load(model, device="cpu", classes=["a", "b", "c"], normalization=None)
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)
    with pytest.raises(ValueError, match=r"got an array of shape \(8000, 2\): the model takes mono audio.*"
                                         r"x.mean\(axis=1\)"):
        p.predict(np.stack([wave, wave], 1))
    # (channels, samples) of another length than the model's: refused, naming the mix (torchaudio's layout)
    with pytest.raises(ValueError, match=r"got an array of shape \(2, 16000\): the model takes mono audio of 8000 "
                                         r"samples; if this is one clip of 2 channels .*x.mean\(0\)"):
        p.predict(np.stack([np.tile(wave, 2)] * 2))
    assert "mono" in dcatkit.Predictor.predict.__doc__ and "x.mean(0)" in dcatkit.Predictor.predict.__doc__


def test_check_inputs_that_are_the_whole_splits_say_which_part_to_pass(trained, tmp_path):
    """export(check_inputs=splits) said "got an array of shape ()"."""
    for bad in (trained["splits"], [trained["splits"]], torch.utils.data.Subset(trained["splits"].test, [0, 1])):
        whole = "" if isinstance(bad, torch.utils.data.Subset) else r" \(the whole split container"
        with pytest.raises(ValueError, match=r"check_inputs: pass splits.test \(a PairedDataset\) or raw arrays "
                                             rf"\(B, \*input_shape\), got {type(bad).__name__}{whole}"):
            dcatkit.export(trained["run"], tmp_path / "m.pt2", check_inputs=bad)
    assert not any(tmp_path.iterdir())


def _tampered_onnx(src: Path, out: Path, change) -> Path:
    import onnx

    m = onnx.load(str(src))
    props = {p.key: p.value for p in m.metadata_props}
    change(props)
    del m.metadata_props[:]
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(out))
    return out


@needs_onnx
def test_a_file_whose_metadata_does_not_fit_its_graph_is_refused_at_load(trained, exported, tmp_path):
    """Class names more or fewer than the graph's outputs (an IndexError at predict, or wrong
    names), another input shape, or missing metadata: refused when the file is loaded, naming
    what does not fit. A format-2 file without its 'input' key still takes raw input (it is
    not scaled a second time as a format-1 file would be)."""
    src, k = exported["onnx"].path, len(trained["splits"].classes)
    raw = trained["raw_test"][:4]
    for n in (k - 1, k + 1):
        names = json.dumps([str(i) for i in range(n)])
        bad = _tampered_onnx(src, tmp_path / f"c{n}.onnx", lambda p: p.update(classes=names))
        with pytest.raises(ValueError, match=rf"names {n} classes .* but its graph outputs {k} scores per sample"):
            dcatkit.Predictor.load(bad)
    bad = _tampered_onnx(src, tmp_path / "shape.onnx", lambda p: p.update(input_shape=json.dumps([6, 16])))
    with pytest.raises(ValueError, match=r"one sample has shape \(6, 16\) but its graph takes \(6, 32\)"):
        dcatkit.Predictor.load(bad)
    for key in ("classes", "input_dtype"):
        bad = _tampered_onnx(src, tmp_path / f"no_{key}.onnx", lambda p: p.pop(key))
        with pytest.raises(ValueError, match=rf"lacks the metadata \['{key}'\]"):
            dcatkit.Predictor.load(bad)
    no_input = _tampered_onnx(src, tmp_path / "noinput.onnx", lambda p: p.pop("input"))
    np.testing.assert_array_equal(dcatkit.Predictor.load(no_input).predict(raw).logits,
                                  dcatkit.Predictor.load(src).predict(raw).logits)


def test_a_pt2_whose_metadata_does_not_fit_its_graph_is_refused(trained, exported, tmp_path):
    program = torch.export.load(str(exported["pt2"].path))
    graph = deploy._pt2_graph(program)
    info = exported["pt2"].info
    assert graph == {"classes": len(info["classes"]), "input_shape": [6, 32], "input_dtype": "float32"}
    deploy._check_graph(info, graph, tmp_path / "m.pt2")
    with pytest.raises(ValueError, match=r"names 2 classes .* outputs \d+ scores"):
        deploy._check_graph({**info, "classes": ["a", "b"]}, graph, tmp_path / "m.pt2")
    with pytest.raises(ValueError, match="says its input is uint8 but its graph takes float32"):
        deploy._check_graph({**info, "input_dtype": "uint8"}, graph, tmp_path / "m.pt2")
