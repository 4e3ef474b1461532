"""Notebook parameters the validation cell refuses with a message saying what it expected.

- 04: ``-p mcma_options True`` (a bool, not a list) was a TypeError ("'bool' object is not
  iterable");
- 05: ``subject_split="id"`` was accepted, and section 5 then said its test subjects were never
  seen in training (8 of 9 were): refused in the validation cell, before anything trains.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ci_size

REPO = Path(__file__).resolve().parent.parent
NB = REPO / "notebooks"


def _papermill(name: str, tmp_path: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DCATKIT_FIGURES_DIR"}
    env = {**env, "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1", "DCATKIT_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "papermill", str(NB / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"), "-k",
           "python3", "--no-progress-bar", "-p", "out_dir", str(tmp_path / "out"),
           *ci_size.papermill_args({**ci_size.DATA, **ci_size.TRAIN}), *args]     # CI size, should a check be missing
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0, f"papermill {name} {args} should have stopped in the validation cell"
    return r.stdout + r.stderr


@pytest.mark.parametrize("args, said", [
    (("-p", "mcma_options", "True"), "mcma_options must be a non-empty list of True/False, e.g. [True, False]"),
    (("-y", "mcma_options: [1, 0]"), "got [1, 0] (list)"),
], ids=["bool", "ints"])
def test_notebook_04_refuses_mcma_options_that_are_no_list_of_bools(tmp_path, args, said):
    out = _papermill("04_lambda_ablation", tmp_path, *args)
    assert said in out and "is not iterable" not in out, out[-3000:]
    assert not (tmp_path / "out" / "04_lambda_ablation" / "sweep").exists()       # nothing ran


def test_notebook_05_refuses_a_subject_split_that_holds_no_subject_out(tmp_path):
    out = _papermill("05_confusion_analysis", tmp_path, "-p", "subject_split", "id")
    assert "subject_split must hold subjects out of training: 'ood', 'loso' or ['group_kfold', k], got 'id'" in out, \
        out[-3000:]
    assert not (tmp_path / "out" / "checkpoints").exists() or not any((tmp_path / "out" / "checkpoints").iterdir())
