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
import re
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
    env = {k: v for k, v in os.environ.items() if k != "DCATKIT_FIGURES_DIR"}   # only `make notebooks` sets it
    env = {**env, "DCATKIT_CACHE": str(root / "source_cache"), "MPLBACKEND": "Agg",
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
    papermill(NB / f"{name}.ipynb", dst, ["-p", "out_dir", str(root / "out"), *CI[name]], env)   # figures_dir default
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                        "-q", "--rootdir", str(root), str(dst)], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"nbval {name}:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    figures = {p.name for p in (root / "out" / "figures").glob(f"{name[:2]}_*.png")}
    assert figures, f"{name} saved no figure under <out_dir>/figures (figures_dir=None)"
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


def test_notebook_06_on_a_real_dataset_says_what_to_run_instead(work):
    """Notebook 06's studies are built into the simulator; on a real dataset it stops and names
    the command that runs the same design there (a grid beside controls built from the data)."""
    root, env = work
    r = papermill(NB / "06_when_transfer_helps.ipynb", root / "bad06.ipynb",
                  ["-p", "out_dir", str(root / "bad06"), "-p", "dataset", "cough", "-p", "data_root", str(root)],
                  env, check=False)
    assert r.returncode != 0
    assert "python -m dcatkit sweep --controls --dataset cough" in r.stdout + r.stderr


# --------------------------------------------------------------------------- the committed notebooks teach

TEACHING = ["01_preprocessing", "02_unimodal", "03_transfer", "04_lambda_ablation", "05_confusion_analysis"]
# A result typed into prose (e.g. "0.986") goes stale when the notebook is re-run: numbers in the
# markdown come from cells (IPython.display.Markdown). Constants that are not results may be typed.
CONSTANTS = {"1.414"}                                   # sqrt(2), the L_CA of orthogonal matrices


def _nb(name):
    return json.loads((NB / f"{name}.ipynb").read_text())


@pytest.mark.parametrize("name", TEACHING)
def test_markdown_quotes_no_typed_results(name):
    import re

    for i, cell in enumerate(_nb(name)["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        typed = set(re.findall(r"(?<![\w.])\d\.\d{3}(?!\d)", text)) - CONSTANTS
        assert not typed, (f"{name} markdown cell {i} types result(s) {sorted(typed)}: compute them in a code cell "
                           "(IPython.display.Markdown) so text and outputs stay in step")


@pytest.mark.parametrize("name", TEACHING)
def test_saved_outputs_hold_no_progress_bars(name):
    import re

    for i, cell in enumerate(_nb(name)["cells"]):
        for o in cell.get("outputs", []):
            text = "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            assert not re.search(r"\d+%\|", text), f"{name} cell {i} saved progress-bar residue: {text[:200]!r}"


@pytest.mark.parametrize("name", TEACHING)
def test_notebook_has_learning_scaffold(name):
    """Learning goals at the top, a summary and 'Try this' exercises at the end, the glossary and
    the next notebook linked."""
    md = ["".join(c["source"]) for c in _nb(name)["cells"] if c["cell_type"] == "markdown"]
    assert "**Learning goals.**" in md[0], f"{name}: no learning goals in its first cell"
    tail = "\n".join(md[-2:])
    assert "## Summary" in tail and "## Try this" in tail, f"{name}: no summary / Try this at the end"
    assert re.search(r"^1\. \*\*", tail, re.M), f"{name}: exercises are a numbered list"
    nxt = f"{int(name[:2]) + 1:02d}_"
    assert f"]({nxt}" in tail, f"{name}: no link to the next notebook ({nxt}...)"
    assert any("GLOSSARY.md" in m for m in md[:2]), f"{name}: the glossary is not linked at the top"


def test_glossary_defines_the_terms():
    text = (NB / "GLOSSARY.md").read_text()
    for term in ("MCMA", "d_out", "Bootstrap", "BCa", "Wilcoxon", "InfoNCE", "CLIP-style", "temperature", "LOSO",
                 "macro", "L_CA"):
        assert term.lower() in text.lower(), f"GLOSSARY.md does not define {term}"


def test_intro_not_repeated():
    """The old shared intro paragraph is gone from 01-05 (the glossary and 01 say it once)."""
    firsts = ["".join(_nb(n)["cells"][0]["source"]) for n in TEACHING]
    assert not any("improves a classifier of one\n# sensor modality" in f for f in firsts)
    assert len({f.split("**Learning goals.**")[1][:200] for f in firsts}) == len(firsts)


def _outputs_text(name) -> str:
    """Every text a saved notebook shows: streams, Markdown and plain-text results."""
    out = []
    for cell in _nb(name)["cells"]:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            for t in (o.get("text"), data.get("text/markdown"), data.get("text/plain")):
                if t:
                    out.append("".join(t))
    return "\n".join(out)


def findings_06_intervals(readme: str) -> list[str]:
    """The "mean [low, high]" intervals of FINDINGS.md's notebook 06 table (between its header
    row and the first line that is not a table row), with its minus signs as ASCII."""
    import re

    start = readme.index("| study (300 recordings unless said) |")
    rows = []
    for line in readme[start:].splitlines():
        if not line.startswith("|"):
            break
        rows.append(line)
    text = "\n".join(rows).replace("−", "-").replace("**", "")
    return re.findall(r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", text)


def notebook_06_cells() -> dict[tuple[str, str, int], dict]:
    """Every verdict cell of notebook 06's committed run, recomputed from
    notebooks/results/06_runs.csv as the notebook computes it (its defaults: tuned cells over
    λ in 1, 10, 100 with D-CAT kept at λ = 1, ``studies.with_tuned``; pooled over the draws with
    Holm per study, ``studies.pooled_verdicts``; printed by ``studies.verdict_table``), keyed by
    (study, method label, size): the printed row, with the λ chosen for a tuned cell."""
    from dcatkit import studies

    runs = pd.read_csv(NB / "results" / "06_runs.csv")
    for name in ("(a) video→imu, id", "(c) positive control"):      # notebook 06's MAIN and POSITIVE
        runs = studies.with_tuned(runs, name, [1, 10, 100], keep=[("dcat", 1.0)])
    pooled, per_draw = studies.pooled_verdicts(runs)
    pooled = pooled[pooled.method != "none"]
    table = studies.verdict_table(pooled, per_draw)                 # one row per pooled row, in its order
    chosen = {(r.study, r.method, int(r.size)): dict(map(int, x) for x in re.findall(r"λ = (\d+): (\d+)", r.chosen))
              for r in studies.lam_choices(runs).itertuples()}
    cells = {}
    for p, row in zip(pooled.itertuples(), table.to_dict("records")):
        key = (p.study, row["method"], int(p.size))
        cells[key] = {**row, "kind": p.kind, "diff": f"{p.diff_mean:+.3f}", "chosen": chosen.get(key)}
    return cells


def _findings_06_rows(text: str) -> list[list[str]]:
    """FINDINGS.md's notebook 06 table, one list of cells per row (minus signs and bold as plain text)."""
    start = text.index("| study (300 recordings unless said) |")
    rows = []
    for line in text[start:].splitlines()[2:]:                      # past the header and its rule
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.replace("−", "-").replace("**", "").strip().strip("|").split("|")])
    return rows


def findings_06_mismatches(text: str, cells: dict, shown: str) -> list[str]:
    """Each row of FINDINGS.md's notebook 06 table against the cell(s) it names, matched by
    (study, method, size): its baseline, pooled interval (or, for a row of several methods, each
    method's pooled difference and the Holm family), per-draw means with seeds won / lost, call and
    the λ chosen for a tuned cell; every study cell must have its row, and each named cell's
    interval, call and per-draw results must be printed together by the executed notebook."""
    studies_of = {}
    for (study, method, size), c in cells.items():
        if not c["kind"].endswith("-grid"):
            studies_of.setdefault(study[:3], set()).add(study)
    bad, seen = [], set()
    for cols in _findings_06_rows(text):
        if len(cols) != 5:
            bad.append(f"not 5 columns: {cols}")
            continue
        what, base, pooled_cell, draws, call = cols
        (study,) = studies_of.get(what[:3], {None})
        size = re.search(r"n = (\d+)|(\d+) labels", what)
        sizes = {k[2] for k in cells if k[0] == study}
        size = int(size.group(1) or size.group(2)) if size else (next(iter(sizes)) if len(sizes) == 1 else None)
        methods = [m + t for m, t in re.findall(r"\b(dcat|kd|contrastive)\b( \(tuned)?", what)]
        methods = [m + ")" if m.endswith("(tuned") else m for m in methods]
        keys = [(study, m, size) for m in methods]
        missing = [k for k in keys if k not in cells]
        if study is None or not keys or missing:
            bad.append(f"{what!r}: names no verdict cell of the run ({missing or keys})")
            continue
        seen.update(keys)
        want_call = call.split(" (")[0]
        for k in keys:
            c = cells[k]
            if not base.startswith(c["baseline"]):
                bad.append(f"{what!r} {k[1]}: baseline {base!r}, the run's {c['baseline']}")
            if c["call"] != want_call:
                bad.append(f"{what!r} {k[1]}: call {call!r}, the run's {c['call']!r}")
            if not re.search(re.escape(c["Δ pooled [adjusted CI]"]) + r"\s+" + re.escape(c["call"]) + r"\s+"
                             + re.escape(c["Δ per draw (seeds +/-)"]), shown):
                bad.append(f"{k}: notebook 06 does not print {c['Δ pooled [adjusted CI]']} {c['call']} "
                           f"{c['Δ per draw (seeds +/-)']} together")
        if len(keys) == 1:
            c = cells[keys[0]]
            if pooled_cell != c["Δ pooled [adjusted CI]"]:
                bad.append(f"{what!r}: pooled {pooled_cell!r}, the run's {c['Δ pooled [adjusted CI]']}")
            if draws != c["Δ per draw (seeds +/-)"]:
                bad.append(f"{what!r}: per draw {draws!r}, the run's {c['Δ per draw (seeds +/-)']}")
            pick = re.search(r"λ = (\d+) chosen (\d+) times((?:, \d+: \d+)*)", what)
            if pick:
                quoted = {int(pick.group(1)): int(pick.group(2)),
                          **{int(a): int(b) for a, b in re.findall(r"(\d+): (\d+)", pick.group(3))}}
                if quoted != c["chosen"]:
                    bad.append(f"{what!r}: λ chosen {quoted}, the run's {c['chosen']}")
        else:                                                       # "−0.004 / +0.235 / +0.080 (Holm over 6)"
            diffs = re.findall(r"[+-]\d\.\d{3}", pooled_cell.split("(")[0])
            if diffs != [cells[k]["diff"] for k in keys]:
                bad.append(f"{what!r}: pooled {diffs}, the run's {[cells[k]['diff'] for k in keys]}")
            family = re.search(r"Holm over (\d+)", pooled_cell)
            if family and {cells[k]["family"] for k in keys} != {f"{family.group(1)} cells"}:
                bad.append(f"{what!r}: Holm over {family.group(1)}, the run's {cells[keys[0]]['family']}")
            if draws:                                               # "kd +0.143 (9/1); +0.213 (10/0); ..."
                name, _, per = draws.partition(" ")
                k = (study, name, size)
                if k not in keys or per != cells[k]["Δ per draw (seeds +/-)"]:
                    bad.append(f"{what!r}: per draw {draws!r}, the run's "
                               f"{cells[k]['Δ per draw (seeds +/-)'] if k in cells else 'no such cell'}")
    study_cells = {k for k, c in cells.items() if not c["kind"].endswith("-grid")}
    if seen != study_cells:
        bad.append(f"study cells without a row: {sorted(study_cells - seen)}")
    return bad


def test_findings_06_table_is_the_committed_run():
    """FINDINGS.md's notebook 06 table is the committed run, row by row: each row's cell(s),
    matched by study, method and size, recomputed from notebooks/results/06_runs.csv and printed
    so by the executed notebook 06 (``findings_06_mismatches``). A re-run that changes a result,
    two rows' intervals swapped or a call word changed fails here until FINDINGS.md is rewritten."""
    text = (NB.parent / "FINDINGS.md").read_text()
    cells, shown = notebook_06_cells(), _outputs_text("06_when_transfer_helps")
    intervals = findings_06_intervals(text)
    assert len(intervals) >= 9, f"found only {intervals} in FINDINGS.md's notebook 06 table"
    assert not [x for x in intervals if x not in shown]
    bad = findings_06_mismatches(text, cells, shown)
    assert not bad, "FINDINGS.md's notebook 06 table is not the committed run:\n" + "\n".join(bad)
    # the check sees what it is for: two rows' intervals swapped, a call word changed, a row dropped
    a, b = "+0.020 [−0.020, +0.061]", "**+0.136 [+0.032, +0.240]**"
    assert text.count(a) == 1 and text.count(b) == 1
    swapped = text.replace(a, "@").replace(b, a).replace("@", b)
    row = next(line for line in text.splitlines() if line.startswith("| (b) negative control"))
    for edited in (swapped, text.replace(row, row.replace("| no evidence (0 false calls) |", "| hurts |")),
                   text.replace(row + "\n", "")):
        assert edited != text and findings_06_mismatches(edited, cells, shown)
