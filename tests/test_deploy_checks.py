"""dcatkit.deploy's argument handling on CPU: the bounds given keyed by modality (as
``splits.normalization`` holds them) are the bounds used, a file name's suffix is read in any
case, example_batch below 2 is refused up front, and a file's class list is checked at load."""
import numpy as np
import pytest
import torch

import dcatkit
from dcatkit import deploy
from dcatkit.model import build_model
from helpers import TINY

CLASSES = ["a", "b", "c"]
LO, HI = [-2.0, 0.0], [2.0, 10.0]


def _model():
    torch.manual_seed(0)
    return build_model("acc", 3, (2, 16), TINY["imu"], kind="timeseries")


def _raw(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-2, 2, (n, 16)), rng.uniform(0, 10, (n, 16))], axis=1).astype(np.float32)


def _by_hand(model, x):
    """Logits of the eager model on x min-max scaled with LO / HI per channel, computed here."""
    lo, hi = (np.asarray(v, np.float32)[None, :, None] for v in (LO, HI))
    with torch.no_grad():
        return model.eval()(torch.from_numpy(2 * (x - lo) / (hi - lo) - 1)).logits.numpy()


def test_bounds_keyed_by_modality_are_the_bounds_used():
    """normalization={"acc": {...}} (splits.normalization's layout) is the same scaling as the
    inner dict, and the Predictor's logits on raw windows are the model's on windows scaled by hand."""
    model, x = _model(), _raw()
    bounds = {"method": "minmax", "min": LO, "max": HI, "from": "train"}
    keyed = dcatkit.Predictor.load(model, classes=CLASSES, normalization={"acc": bounds}, device="cpu")
    inner = dcatkit.Predictor.load(model, classes=CLASSES, normalization=bounds, device="cpu")
    assert keyed.normalization["min"] == LO and keyed.normalization["max"] == HI
    np.testing.assert_allclose(keyed.predict(x).logits, _by_hand(model, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(keyed.predict(x).logits, inner.predict(x).logits)


def test_a_bfloat16_tensor_is_predicted_like_its_float32_values():
    """predict takes torch tensors: a bfloat16 one (a GPU pipeline's autocast output) stopped in
    torch's bare 'TypeError: Got unsupported ScalarType BFloat16' (numpy has no bfloat16). Its
    values are float32 values exactly, and give the float32 answer."""
    model = _model()
    p = dcatkit.Predictor.load(model, classes=CLASSES, normalization={"min": LO, "max": HI}, device="cpu")
    x = torch.from_numpy(_raw()).to(torch.bfloat16)
    np.testing.assert_array_equal(p.predict(x).logits, p.predict(x.float().numpy()).logits)
    np.testing.assert_array_equal(p.predict(x[0]).logits, p.predict(x.float()[0]).logits)     # one sample


def test_an_upper_case_suffix_exports_and_loads_like_a_lower_case_one(tmp_path):
    model, x = _model(), _raw()
    res = dcatkit.export(model, tmp_path / "ACC.PT2", classes=CLASSES, normalization={"min": LO, "max": HI})
    assert res.format == "pt2" and res.path.is_file()
    p = dcatkit.Predictor.load(tmp_path / "ACC.PT2", trusted=True, device="cpu")
    assert p.classes == CLASSES
    np.testing.assert_allclose(p.predict(x).logits, _by_hand(model, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 0])
def test_an_example_batch_below_two_is_refused_before_any_work(tmp_path, batch):
    """Checked first, so the source (here not even a model) is never read."""
    with pytest.raises(ValueError, match=rf"example_batch must be >= 2 \(torch.export specialises batch 1\), "
                                         rf"got {batch}"):
        dcatkit.export(object(), tmp_path / "m.pt2", example_batch=batch)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("classes", ["[]", '["a", 2]', '"abc"', '{"a": 0}'])
def test_a_files_classes_must_be_a_non_empty_list_of_names(tmp_path, classes):
    props = {"dcatkit_format": "2", "classes": classes, "modality": '"imu"', "kind": '"timeseries"',
             "input_shape": "[6, 32]", "input_dtype": '"float32"', "normalization": "null"}
    with pytest.raises(ValueError, match=r"metadata 'classes' must be a non-empty list of class names"):
        deploy._info_from_strings(props, tmp_path / "x.onnx")
    good = deploy._info_from_strings({**props, "classes": '["a", "b"]'}, tmp_path / "x.onnx")
    assert good["classes"] == ["a", "b"] and good["input"] == "raw"
