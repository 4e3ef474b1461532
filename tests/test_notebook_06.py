"""Notebook 06 (when does transfer help?), executed for real at CI size.

papermill with tiny parameters (the CI sizes of ``ci_size`` plus a grid of 2 seeds, one size,
in-process runs) into a temporary folder, then nbval re-runs it and compares the
``# NBVAL_CHECK_OUTPUT`` cell. The results files are read back: every study and method is
there, each difference is paired with its seed's baseline, and with 2 seeds the verdict
claims nothing ("too few seeds").
"""
import json

import pandas as pd
import pytest

import ci_size
from test_notebooks import NB, papermill, work  # noqa: F401  (work: the shared temporary folder fixture)

NAME = "06_when_transfer_helps"
GRID = "\n".join(["sizes: [96]", "seeds: [0, 1]", "methods: [none, dcat, kd]", "control_methods: [none, dcat]",
                  "other_split_methods: [none, dcat]", "reverse_methods: [none, dcat]", "reverse_size: 96"])
CI = ci_size.papermill_args(ci_size.DATA) + ci_size.papermill_args(ci_size.TRAIN) + ["-p", "workers", "0",
                                                                                     "-y", GRID]


def test_notebook_06_runs_and_nbval(work):  # noqa: F811
    import subprocess
    import sys

    root, env = work
    dst = root / f"{NAME}.ipynb"
    papermill(NB / f"{NAME}.ipynb", dst, ["-p", "out_dir", str(root / "out06"), "-p", "figures_dir",
                                          str(root / "figures06"), *CI], env)
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                        "-q", "--rootdir", str(root), str(dst)], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"nbval {NAME}:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    assert {p.name for p in (root / "figures06").glob("06_*.png")} == {
        "06_f1_vs_size.png", "06_delta_f1.png", "06_delta_f1_ood_reverse.png"}

    folder = root / "out06" / NAME
    runs = pd.read_csv(folder / "runs.csv")
    studies = {"video→imu, id, headroom": ["none", "dcat", "kd"], "video→imu, id, ambiguous": ["none", "dcat"],
               "video→imu, ood, headroom": ["none", "dcat"], "imu→video, ood, headroom": ["none", "dcat"]}
    assert sorted(runs.study.unique()) == sorted(studies)
    for study, methods in studies.items():
        r = runs[runs.study == study]
        assert sorted(r.method.unique()) == sorted(methods) and len(r) == 2 * len(methods), study
        assert (r.n_samples == 96).all() and (r.data_seed == 0).all() and (r.source_seed == 0).all()
        assert r.source_f1.nunique() == 1, f"{study}: one frozen source shared by every seed and method"
    assert set(runs.loc[runs.study.str.startswith("imu→video"), "target"]) == {"video"}
    assert set(runs.loc[runs.study.str.contains("ambiguous"), "regime"]) == {"ambiguous"}
    assert runs.f1.between(0, 1).all()

    summary = pd.read_csv(folder / "summary.csv")
    for row in summary[summary.method != "none"].itertuples():
        r = runs[(runs.study == row.study) & (runs.n_samples == row.n_samples)]
        d = (r[r.method == row.method].set_index("seed").f1 - r[r.method == "none"].set_index("seed").f1)
        assert row.n_pairs == 2 and row.diff_mean == pytest.approx(d.mean())
    verdicts = json.loads((folder / "verdicts.json").read_text())["rows"]
    assert len(verdicts) == sum(len(m) - 1 for m in studies.values())
    assert all(v["verdict"].startswith("too few seeds: 2 paired") for v in verdicts)     # no claim from 2 seeds
    text = json.dumps(json.loads(dst.read_text())["cells"])
    assert "too few seeds (2) for any claim" in text and "helps:" not in text and "hurts:" not in text


def test_notebook_06_bad_grid_fails_clearly(work):  # noqa: F811
    root, env = work
    r = papermill(NB / f"{NAME}.ipynb", root / "bad06.ipynb", ["-p", "out_dir", str(root / "bad06"),
                                                               "-y", "methods: [none, distill]"], env, check=False)
    assert r.returncode != 0
    assert "unknown transfer method 'distill'" in r.stdout + r.stderr
    r = papermill(NB / f"{NAME}.ipynb", root / "bad06b.ipynb", ["-p", "out_dir", str(root / "bad06"),
                                                                "-y", "reverse_methods: [dcat]"], env, check=False)
    assert r.returncode != 0
    assert "reverse_methods must include 'none'" in r.stdout + r.stderr


def test_notebooks_default_size_is_the_simulators():
    """The notebooks' n_samples default (the same in every notebook: test_notebook_pairs) is the
    simulator's own default size, where the IMU has headroom (benchmarks/SIMULATOR.md)."""
    from test_notebook_pairs import defaults

    from dcatkit.data.synthetic import DEFAULT_N_SAMPLES

    assert defaults(NAME)["n_samples"] == DEFAULT_N_SAMPLES
    assert len(defaults(NAME)["seeds"]) >= 10                  # the default run can make claims
