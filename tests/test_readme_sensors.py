"""The README's "Your own sensors" snippet runs as written: two named sensors from arrays ->
baseline and transfer -> export -> predictions on new raw data."""
import re
from pathlib import Path

import numpy as np
import torch

from dcatkit.data.preprocess import minmax_apply

README = Path(__file__).resolve().parent.parent / "README.md"


def _snippet() -> str:
    text = README.read_text()
    section = text.split("## Your own sensors", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section should hold exactly one python block"
    return blocks[0]


def test_readme_own_sensors_snippet_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)                              # it writes gyro.pt2 into the working directory
    ns: dict = {}
    exec(compile(_snippet(), str(README) + ":Your own sensors", "exec"), ns)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("{'acc baseline'") and "D-CAT acc->gyro" in printed[0]
    splits, target, predictor, gyro = ns["splits"], ns["target"], ns["predictor"], ns["gyro"]
    assert splits.kinds == {"acc": "timeseries", "gyro": "timeseries"}
    assert target.model.config["modality"] == "gyro" and target.model.config["kind"] == "timeseries"
    assert (predictor.modality, predictor.kind, predictor.input_shape) == ("gyro", "timeseries", (3, 64))
    norm = splits.normalization["gyro"]
    assert predictor.normalization["min"] == norm["min"] and predictor.normalization["max"] == norm["max"]
    # the exported file on raw windows == the trained model on windows scaled with gyro's own training bounds
    scaled = minmax_apply(gyro[:3], np.asarray(norm["min"], np.float32), np.asarray(norm["max"], np.float32))
    with torch.no_grad():
        ref = target.model.cpu().eval()(torch.from_numpy(scaled)).logits.numpy()
    np.testing.assert_allclose(predictor.predict(gyro[:3]).logits, ref, rtol=1e-4, atol=1e-4)
    assert printed[1] == str([splits.classes[i] for i in ref.argmax(axis=1)])
    # the snippet's last line saved the arrays: loading the file gives the splits it trained on
    from dcatkit.data import load

    saved = load("arrays", root=tmp_path / "wrist.npz", split="id", seed=0)
    for part in ("train", "val", "test"):
        assert list(getattr(saved, part).ids) == list(getattr(splits, part).ids)
        assert np.array_equal(getattr(saved, part).arrays["gyro"], getattr(splits, part).arrays["gyro"])
    assert saved.classes == splits.classes and saved.kinds == splits.kinds
