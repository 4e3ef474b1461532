"""Notebook 06 (when does transfer help?), executed for real at CI size.

papermill with tiny parameters (the CI sizes of ``ci_size``, 2 data draws x 2 seeds, one size,
in-process runs) into a temporary folder, then nbval re-runs it and compares the
``# NBVAL_CHECK_OUTPUT`` cell. The results are read back: every study and method of the grid is
there on both draws, each draw has its own sources, the pooled rows are the mean of the per-draw
paired differences, and with 2 seeds nothing is claimed ("too few seeds"). ``run=False`` reads
the committed ``notebooks/results/06_runs.csv`` and trains nothing (a fresh clone's path). The
committed notebook teaches: learning goals, computed prose, exercises, no typed results.
"""
import json
import re

import numpy as np
import pandas as pd
import pytest

import ci_size
from test_notebooks import NB, REPO, papermill, work  # noqa: F401  (work: the shared temporary folder)

NAME = "06_when_transfer_helps"
GRID = "\n".join(["sizes: [96]", "seeds: [0, 1]", "positive_labels: [10]", "curve_labels: [10]",
                  "positive_methods: [none, dcat]", "tune_lams: [1, 30]"])
CI = ci_size.papermill_args(ci_size.DATA) + ci_size.papermill_args(ci_size.TRAIN) + [
    "-p", "workers", "0", "-p", "draws", "2", "-p", "control_size", "96", "-y", GRID]
COMMITTED = REPO / "notebooks" / "results" / "06_runs.csv"


def _outputs(nb: dict) -> str:
    return "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", ""))
                     + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))


def test_notebook_06_runs_and_nbval(work):  # noqa: F811
    import subprocess
    import sys

    root, env = work
    before = COMMITTED.stat().st_mtime_ns if COMMITTED.exists() else None
    dst = root / f"{NAME}.ipynb"
    papermill(NB / f"{NAME}.ipynb", dst, ["-p", "out_dir", str(root / "out06"), "-p", "figures_dir",
                                          str(root / "figures06"), *CI], env)
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                        "-q", "--rootdir", str(root), str(dst)], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"nbval {NAME}:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    assert {p.name for p in (root / "figures06").glob("06_*.png")} == {
        "06_verdicts.png", "06_f1_vs_size.png", "06_f1_vs_labels.png", "06_explorer.png"}
    # a papermill run never rewrites the committed results (only `make notebooks` does)
    assert (COMMITTED.stat().st_mtime_ns if COMMITTED.exists() else None) == before

    folder = root / "out06" / NAME
    runs = pd.read_csv(folder / "06_runs.csv")
    studies = {"(a) video→imu, id": (["dcat", "none"], "f1"), "(e) video→imu, id, Table I recipe": (["dcat", "none"], "f1"),
               "(b) negative control": (["dcat", "none"], "recall"),
               "(c) positive control": (["dcat", "none"], "f1"),
               "(d) unlabeled-pairs curve": (["contrastive", "dcat", "kd", "none"], "f1")}
    assert list(dict.fromkeys(runs.study)) == list(studies)
    for study, (methods, metric) in studies.items():
        r = runs[runs.study == study]
        assert sorted(r.method.unique()) == methods and set(r.data_seed) == {0, 1} and set(r.seed) == {0, 1}
        assert (r.metric == metric).all() and np.allclose(r.value, r[metric])
        per_draw_source = r.groupby("data_seed").source_f1.nunique()
        assert (per_draw_source == 1).all(), f"{study}: one frozen source per draw, shared by its seeds and methods"
    for study in ("(c) positive control", "(a) video→imu, id"):              # every lambda of the tuning grid
        r = runs[runs.study == study]
        assert sorted(r[r.method == "dcat"].lam.unique()) == [1.0, 30.0]
    assert set(runs[runs.study == "(c) positive control"]["size"]) == {10}
    assert set(runs[runs.study == "(a) video→imu, id"]["size"]) == {96}
    assert set(runs[runs.study == "(e) video→imu, id, Table I recipe"]["size"]) == {96}
    assert set(runs[runs.study == "(b) negative control"]["size"]) == {-1}          # every label

    pooled = pd.read_csv(folder / "pooled.csv")
    tuned = pooled[pooled.method == "dcat (tuned)"]
    assert set(tuned.study) == {"(a) video→imu, id", "(c) positive control"}
    assert {"(a) video→imu, id, every λ", "(c) positive control, every λ"} <= set(pooled.study)
    for row in pooled[pooled.method != "none"].itertuples():
        r = runs[(runs.study == row.study.removesuffix(", every λ")) & (runs["size"] == row.size)]
        means = []
        for _, g in r.groupby("data_seed"):
            base = g[g.method == "none"].set_index("seed").value
            if row.method == "dcat (tuned)":     # by hand: each seed takes the lambda best on the OTHER seeds' val F1
                d = g[g.method == "dcat"]
                val, test = (d.pivot(index="seed", columns="lam", values=c) for c in ("val_f1", "value"))
                arm = pd.Series({s: test.loc[s, val.drop(index=s).mean().idxmax()] for s in val.index})
            else:
                arm = g[(g.method == row.method) & (g.lam == row.lam)].set_index("seed").value
            means.append((arm - base).mean())
        assert row.n_pairs == 4 and row.n_draws == 2 and row.diff_mean == pytest.approx(np.mean(means))
        assert row.call == "too few seeds"                                      # no claim from 2 seeds
    text = _outputs(json.loads(dst.read_text()))
    assert "too few seeds" in text and "helps:" not in text and "hurts:" not in text
    assert "this execution took" in text                                        # the measured time, printed


def test_notebook_06_reads_committed_results_without_training(work):  # noqa: F811
    """run=False: the explorer and every table from notebooks/results/06_runs.csv, nothing trained.
    Parameters asking for other draws and seeds than the file holds do not change what the text
    says: it names the draws and seeds of the runs read (before: "Pooled over 5 data draws x 20
    seeds" over the file's 3 x 10)."""
    if not COMMITTED.exists():
        pytest.skip("no committed notebooks/results/06_runs.csv yet (written by `make notebooks`)")
    root, env = work
    dst = root / "read06.ipynb"
    papermill(NB / f"{NAME}.ipynb", dst, ["-p", "out_dir", str(root / "read06"), "-p", "figures_dir",
                                          str(root / "read06" / "figures"), "-p", "run", "False", "-p", "draws", "5",
                                          "-y", "seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"], env)
    text = _outputs(json.loads(dst.read_text()))
    assert "nothing trained" in text and "VBox" in text                    # the explorer is there
    assert not (root / "read06" / NAME / "sweep").exists() and not (root / "read06" / NAME / "controls").exists()
    committed = pd.read_csv(COMMITTED)
    assert f"{len(committed)} runs read from notebooks/results/06_runs.csv" in text
    draws, seeds = sorted(committed.data_seed.unique().tolist()), sorted(committed.seed.unique().tolist())
    assert f"they cover data draws {draws} x seeds {seeds}, not the parameters' [0, 1, 2, 3, 4] x" in text
    assert f"Pooled over {len(draws)} data draws x {len(seeds)} seeds" in text
    assert "Pooled over 5 data draws" not in text


def test_notebook_06_bad_grid_fails_clearly(work):  # noqa: F811
    root, env = work
    r = papermill(NB / f"{NAME}.ipynb", root / "bad06.ipynb", ["-p", "out_dir", str(root / "bad06"),
                                                               "-y", "methods: [none, distill]"], env, check=False)
    assert r.returncode != 0
    assert "unknown transfer method 'distill'" in r.stdout + r.stderr
    r = papermill(NB / f"{NAME}.ipynb", root / "bad06b.ipynb", ["-p", "out_dir", str(root / "bad06"),
                                                                "-y", "negative_methods: [dcat, kd]"], env, check=False)
    assert r.returncode != 0
    assert "methods must include 'none'" in r.stdout + r.stderr


def test_notebooks_default_size_is_the_simulators():
    """The notebooks' n_samples default (the same in every notebook: test_notebook_pairs) is the
    simulator's own default size, where the IMU has headroom (benchmarks/SIMULATOR.md)."""
    from test_notebook_pairs import defaults

    from dcatkit.data.synthetic import DEFAULT_N_SAMPLES

    d = defaults(NAME)
    assert d["n_samples"] == DEFAULT_N_SAMPLES
    assert len(d["seeds"]) >= 10 and d["draws"] >= 3          # the default run can make pooled claims
    assert d["grid"] == "default" and d["run"] is True


# --------------------------------------------------------------------------- the committed notebook teaches

def _nb():
    return json.loads((NB / f"{NAME}.ipynb").read_text())


def test_06_markdown_quotes_no_typed_results():
    """Notebook 06's markdown types no result: the check of notebooks 01-05 (``typed_cells``:
    percentages with decimals, 2+ decimals, leading-dot decimals, "N.N points")."""
    from test_notebooks import typed_cells

    assert typed_cells(_nb()) == [], "06 markdown types results: compute them in a code cell"


def test_06_has_learning_scaffold_and_no_progress_bars():
    nb = _nb()
    md = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert "**Learning goals.**" in md[0] and "GLOSSARY.md" in md[0]
    tail = "\n".join(md[-2:])
    assert "## Summary" in tail and "## Try this" in tail and re.search(r"^1\. \*\*", tail, re.M)
    assert "](01_" in tail                                                   # back to the start
    for term in ("sign-flip", "Holm", "data draw", "negative control", "positive control", "unlabeled pairs"):
        assert term in md[0], f"06 does not define {term!r} at the top"
    for i, cell in enumerate(nb["cells"]):
        for o in cell.get("outputs", []):
            assert not re.search(r"\d+%\|", "".join(o.get("text", ""))), f"06 cell {i}: progress-bar residue"


def test_06_committed_run_wrote_its_findings_and_time():
    """The committed execution printed its measured time and wrote the findings from the verdicts."""
    text = _outputs(_nb())
    if "this execution took" not in text:
        pytest.skip("the committed notebook 06 has not been executed with run=True")
    assert re.search(r"this execution took \d+\.\d min", text)
    assert "Pooled over 3 data draws x 10 seeds" in text and "**The gradient scale.**" in text
