"""The notebooks, executed for real at CI size.

For each notebook: papermill with tiny parameters into a temporary folder, then
nbval (``--nbval-lax``) re-runs the executed notebook and compares the cells
marked ``# NBVAL_CHECK_OUTPUT`` (parameter echo, class and subject counts) with
the papermill run. 03 runs as the documented sweep call
``papermill notebooks/03_transfer.ipynb out.ipynb -p lam 0.1``, from the repo
root and again from ``notebooks/``; its results file is read back and checked.

Everything they write goes to temporary folders (``out_dir``, ``figures_dir``,
the frozen-source cache), except the run from ``notebooks/``, which proves that a
relative ``out_dir`` lands under the repository root and is removed afterwards.
"""
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

import ci_size

REPO = Path(__file__).resolve().parent.parent
NB = REPO / "notebooks"
NOTEBOOKS = ["01_preprocessing", "02_unimodal", "03_transfer", "04_lambda_ablation", "05_confusion_analysis"]
DATA = ci_size.papermill_args(ci_size.DATA)
TRAIN = ci_size.papermill_args(ci_size.TRAIN)
CI = {"01_preprocessing": DATA,
      "02_unimodal": DATA + TRAIN,
      "03_transfer": DATA + TRAIN + ["-p", "lam", "0.1"],     # the documented sweep call
      "04_lambda_ablation": DATA + TRAIN + ["-p", "workers", "0", "-y", "lams: [0.1, 1.0]\nseeds: [0, 1]"],
      "05_confusion_analysis": DATA + TRAIN}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A shared temporary out_dir (later notebooks reuse earlier checkpoints, as in real use)."""
    root = tmp_path_factory.mktemp("notebooks")
    # one intra-op thread: at CI size threads do not help, and they thrash when the machine is shared
    env = {**os.environ, "DCATKIT_CACHE": str(root / "source_cache"), "MPLBACKEND": "Agg",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return root, env


def papermill(src: Path, dst: Path, args, env, cwd=REPO, check=True):
    cmd = [sys.executable, "-m", "papermill", str(src), str(dst), "-k", "python3", "--no-progress-bar", *args]
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, f"papermill {src.name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return r


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_nbval(name, work):
    root, env = work
    dst = root / f"{name}.ipynb"
    papermill(NB / f"{name}.ipynb", dst,
              ["-p", "out_dir", str(root / "out"), "-p", "figures_dir", str(root / "figures"), *CI[name]], env)
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                        "-q", "--rootdir", str(root), str(dst)], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"nbval {name}:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    figures = {p.name for p in (root / "figures").glob(f"{name[:2]}_*.png")}
    assert figures, f"{name} saved no figure"
    if name == "03_transfer":                      # papermill ... 03_transfer.ipynb -p lam 0.1, from the repo root
        _check_transfer_results(root / "out", 0.1)


def _check_transfer_results(folder: Path, lam: float):
    files = list(folder.glob("03_transfer/transfer-*-lam0.1-seed0.csv"))
    assert len(files) == 1, f"expected one results file in {folder}/03_transfer, found {files}"
    df = pd.read_csv(files[0])
    assert len(df) == 4
    assert df["run"].tolist() == ["video source", "imu baseline", "D-CAT", "No MCMA"]
    assert (df["lam"] == lam).all()
    for m in ("accuracy", "precision", "recall", "f1"):
        assert df[m].between(0, 1).all(), m
    blob = json.loads(files[0].with_suffix(".json").read_text())
    assert blob["params"]["lam"] == lam and len(blob["rows"]) == 4


def test_transfer_lam_from_notebooks_dir(work):
    """Run from notebooks/ with a *relative* out_dir: results land under the repo root."""
    root, env = work
    rel = f"outputs/_pytest-{uuid.uuid4().hex[:8]}"
    try:
        papermill(Path("03_transfer.ipynb"), root / "from_nb.ipynb",
                  ["-p", "lam", "0.1", "-p", "out_dir", rel, "-p", "figures_dir", f"{rel}/figures",
                   *CI["03_transfer"]], env, cwd=NB)
        _check_transfer_results(REPO / rel, 0.1)
        assert not (NB / rel).exists()
    finally:
        shutil.rmtree(REPO / rel, ignore_errors=True)
        shutil.rmtree(NB / rel, ignore_errors=True)


def test_bad_parameter_fails_clearly(work):
    """The validation cell stops a run with a bad parameter (all the checks: tests/test_paths.py)."""
    root, env = work
    r = papermill(NB / "03_transfer.ipynb", root / "bad.ipynb", ["-p", "out_dir", str(root / "bad"), "-p", "lam", "-1"],
                  env, check=False)
    assert r.returncode != 0
    assert "lam must be a finite number >= 0" in r.stdout + r.stderr
