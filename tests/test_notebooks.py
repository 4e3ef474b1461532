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
# A result typed into prose (e.g. "0.986", "98.3%", "0.53", ".858", "4.3 points") goes stale when
# the notebook is re-run: numbers in the markdown come from cells (IPython.display.Markdown).
# ``typed_results`` finds them: a number with 2 or more decimals, a percentage with decimals, a
# decimal without its leading 0, a decimal number of points. Constants that are not results may be
# typed, each only in the phrase that makes it one (the same number elsewhere is still caught):
ALLOWED = {
    r"$\sqrt2 \approx 1.414$": "sqrt(2), the L_CA of orthogonal matrices (03)",
    "λ = 0.01": "a λ setting to try (03) or the paper's (04)",
    "λ over {0.01, 0.1, 1, 10}": "the λ grid of the paper's Table IV (04)",
    "between 0.01 and 1": "the paper's words on its Table IV, quoted: λ values (04)",
    "(1 in some rows, 0.01 or 0.1 in others)": "the best λ per row of the paper's Table IV: λ values (04)",
    "--lams 0.01 0.1 1 10 100": "a command's λ grid (04)",
}
TYPED = re.compile(r"(?<![\w.])(?:\d+\.\d+ ?%|\d+\.\d+ (?:F1 |macro-F1 |percentage )?points?\b|\d+\.\d{2,}|\.\d+)")


def typed_results(text: str) -> list[str]:
    """The numbers of a markdown text that read as typed results (``TYPED``), in order, after the
    ``ALLOWED`` phrases are taken out, each where no digit goes on from it ("λ = 0.013" is not
    "λ = 0.01"; whitespace, which wraps lines, counts as one space)."""
    text = " ".join(text.split())
    for phrase in ALLOWED:
        text = re.sub(re.escape(phrase) + r"(?!\.?\d)", " ", text)
    return TYPED.findall(text)


def _nb(name):
    return json.loads((NB / f"{name}.ipynb").read_text())


def test_typed_results_finds_typed_numbers_and_allows_only_the_listed_constants():
    """The detector on strings: each kind of typed result is found, whole; the allowed phrases
    are not, but their numbers outside them are; and every allowed phrase is still in a
    notebook's markdown (an unused one would only widen what passes)."""
    found = {"MCMA keeps 98.3% of the training samples": ["98.3%"], "the cosine reaches 0.53": ["0.53"],
             "D-CAT gains 4.3 points": ["4.3 points"],
             "4.3 F1 points, 12.5 percentage points": ["4.3 F1 points", "12.5 percentage points"],
             "R² .858 (keys)": [".858"], "R² 0.858, −0.043 and +12.25": ["0.858", "0.043", "12.25"],
             "kept 98.3 %": ["98.3 %"], "F1 0.986.": ["0.986"], "at 0.01 above the baseline": ["0.01"],
             "L_CA ended at 1.414": ["1.414"], "λ = 0.013": ["0.013"],
             # what is not a typed result: one decimal, integers and integer percentages, section numbers
             "λ = 0.1, Theorem 4.1, Sec. V-B.1, 95% intervals, 150 samples, 2026-12-06, `-p lam 0.0`": []}
    for text, want in found.items():
        assert typed_results(text) == want, (text, typed_results(text), want)
    for phrase in ALLOWED:
        assert typed_results(phrase) == [] and TYPED.findall(phrase), phrase        # it holds a typed number
    markdown = " ".join(" ".join("".join(c["source"]).split()) for n in TEACHING for c in _nb(n)["cells"]
                        if c["cell_type"] == "markdown")
    assert not [p for p in ALLOWED if p not in markdown], [p for p in ALLOWED if p not in markdown]


def typed_cells(nb: dict) -> list[tuple[int, list[str]]]:
    """(cell index, typed results) of each markdown cell of a notebook that types any."""
    cells = [(i, typed_results("".join(c["source"]))) for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "markdown"]
    return [(i, t) for i, t in cells if t]


@pytest.mark.parametrize("name", TEACHING)
def test_markdown_quotes_no_typed_results(name):
    nb = _nb(name)
    typed = typed_cells(nb)
    assert not typed, (f"{name} markdown cell(s) type result(s) {typed} (cell index, numbers): compute them in a "
                       "code cell (IPython.display.Markdown) so text and outputs stay in step")
    # the check sees typed results in this notebook's markdown (its last markdown cell, in a copy read here)
    last = max(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown")
    nb["cells"][last]["source"] = ["".join(nb["cells"][last]["source"]),
                                   "\nMCMA keeps 98.3% of the training samples; the cosine reaches\n0.53."]
    assert typed_cells(nb) == [(last, ["98.3%", "0.53"])]


@pytest.mark.parametrize("name", TEACHING)
def test_saved_outputs_hold_no_progress_bars(name):
    import re

    for i, cell in enumerate(_nb(name)["cells"]):
        for o in cell.get("outputs", []):
            text = "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            assert not re.search(r"\d+%\|", text), f"{name} cell {i} saved progress-bar residue: {text[:200]!r}"


def noise_outputs(nb: dict) -> list[tuple[int, str]]:
    """(cell index, text) of each saved output a reader would take for a problem: an error, or
    text on stderr (a warning of matplotlib's, e.g. "findfont: Font family 'STIXGeneral' not
    found" from a stale font cache on the machine that executed it, or of any library)."""
    return [(i, o.get("ename") or "".join(o.get("text", ""))[:300])
            for i, c in enumerate(nb["cells"]) for o in c.get("outputs", [])
            if o.get("output_type") == "error" or (o.get("output_type") == "stream" and o.get("name") == "stderr")]


@pytest.mark.parametrize("name", sorted(p.stem for p in NB.glob("[0-9][0-9]_*.ipynb")))
def test_saved_outputs_hold_no_error_or_warning_text(name):
    """A committed notebook is read as the kit's result: a traceback or a warning printed beside it
    (the font-cache noise one re-execution carried into dozens of cells) is fixed on the machine
    that executed it and the notebook executed again, not committed."""
    nb = _nb(name)
    assert not noise_outputs(nb), f"{name}: saved error / stderr outputs (cell, text): {noise_outputs(nb)}"
    code = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    nb["cells"][code]["outputs"] = [{"output_type": "stream", "name": "stderr",
                                     "text": ["findfont: Font family 'STIXGeneral' not found.\n"]},
                                    {"output_type": "stream", "name": "stdout", "text": ["fine\n"]},
                                    {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}]
    assert noise_outputs(nb) == [(code, "findfont: Font family 'STIXGeneral' not found.\n"), (code, "ValueError")]


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


def test_glossary_too_few_seeds_counts_pairs_over_draws():
    """GLOSSARY's *too few seeds* says what ``stats.summarise_draws`` does: it counts a pooled
    cell's pairs over all its draws against ``stats.MIN_SEEDS`` (3 draws x 4 seeds gets a call),
    and one draw of 10 seeds reads *too few draws*. Both cases are run here, so the sentence and
    the code cannot part."""
    import numpy as np

    from dcatkit import stats

    text = " ".join((NB / "GLOSSARY.md").read_text().split())
    assert f"*too few seeds* (fewer than {stats.MIN_SEEDS} pairs, `stats.MIN_SEEDS`" in text
    assert "counts its pairs over all its draws, so 3 draws x 4 seeds gets a call" in text
    assert "1 draw x 10 seeds reads *too few draws*" in text

    def cell(draws, seeds):
        rows = [dict(method=m, lam=1.0, n_samples=300, seed=s, data_seed=d,
                     f1=0.5 + 0.01 * s + 0.02 * d + (0.1 + 0.01 * d if m == "dcat" else 0.0))
                for d in range(draws) for s in range(seeds) for m in ("none", "dcat")]
        out, _ = stats.summarise_draws(pd.DataFrame(rows))
        return out[out.method == "dcat"].iloc[0]

    pooled = cell(3, 4)
    assert pooled.n_pairs == 12 >= stats.MIN_SEEDS > 4 and np.isfinite(pooled.family_size)
    assert pooled.call == "helps"
    assert cell(1, 10).call == "too few draws"
    assert cell(3, 3).call == "too few seeds"                        # 9 pairs


def test_glossary_quotes_the_bca_rows_measured():
    """GLOSSARY's BCa entry quotes the range of the BCa column of benchmarks/RESULTS.md's
    calibration table (share of null sets whose 95% interval holds 0), not one row of it."""
    results = (NB.parent / "benchmarks" / "RESULTS.md").read_text()
    table = results[results.index("| null differences | BCa bootstrap (old) |"):]
    held = []
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        held.append(float(line.strip("|").split("|")[1]))
    assert len(held) >= 4
    low, high = 1 - max(held), 1 - min(held)                          # excluded 0: 1 - held
    text = " ".join((NB / "GLOSSARY.md").read_text().split())
    assert f"excluded 0 in {100 * low:.1f}% (normal differences) to {100 * high:.1f}% (skewed ones)" in text


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
    return re.findall(r"[+-]\d\.\d{3,4} \[[+-]\d\.\d{3,4}, [+-]\d\.\d{3,4}\]", text)   # 4 where 3 read 0


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
    a, b = "+0.015 [−0.026, +0.056]", "**+0.151 [+0.017, +0.284]**"
    assert text.count(a) == 1 and text.count(b) == 1
    swapped = text.replace(a, "@").replace(b, a).replace("@", b)
    row = next(line for line in text.splitlines() if line.startswith("| (b) negative control"))
    for edited in (swapped, text.replace(row, row.replace("| no evidence (0 false calls) |", "| hurts |")),
                   text.replace(row + "\n", "")):
        assert edited != text and findings_06_mismatches(edited, cells, shown)


# --------------------------------------------------------------------------- notebook 06 as a script, run=False

def _notebook_06_script(tmp_path: Path, params: dict, runs_csv: Path | None = None, setup_only: bool = False):
    """Notebook 06 run as its percent script (``benchmarks/notebook_script.script_with``: the
    parameters assigned after its parameters cell, as papermill does; ``display`` prints a
    Markdown's text) in a subprocess with the Agg backend. ``runs_csv``: the table a run=False
    execution reads instead of the committed notebooks/results/06_runs.csv (the only path
    ``dcatkit.paths.resolve`` is redirected for). ``setup_only``: the parameters and setup cells
    only (the printed plan, the parameter checks). Returns the finished process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("notebook_script", REPO / "benchmarks" / "notebook_script.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    src = script.script_with("06_when_transfer_helps", {"out_dir": str(tmp_path / "out"),
                                                        "figures_dir": str(tmp_path / "figures"), **params})
    if setup_only:
        src = src[:src.index("# %% [markdown]\n# ## 1. The runs")]
    # display() prints a Markdown's text (IPython's own prints "<IPython.core.display.Markdown object>")
    src = ("import IPython.display as _display\n"
           "_display.display = lambda *a, **k: [print(getattr(x, 'data', x)) for x in a]\n") + src
    if runs_csv is not None:
        src = ("import dcatkit.paths as _paths\n_resolve = _paths.resolve\n"
               f"_paths.resolve = lambda p: __import__('pathlib').Path({str(runs_csv)!r}) "
               "if str(p) == 'notebooks/results/06_runs.csv' else _resolve(p)\n") + src
    (tmp_path / "nb06.py").write_text(src)
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("DCATKIT_FIGURES_DIR", None)
    return subprocess.run([sys.executable, "-c", f"import runpy; runpy.run_path({str(tmp_path / 'nb06.py')!r}, "
                           "run_name='notebook')"], cwd=NB, env=env, capture_output=True, text=True, timeout=600)


def test_notebook_06_one_draw_prints_no_nan_interval_and_says_the_negative_control_is_untested(tmp_path):
    """With one data draw (its own "Try this" ``-p draws 1``; the committed runs cut to draw 0,
    read with run=False) no pooled cell is tested: every difference is printed without an
    interval, "+0.012 (untested)", never "[+nan, +nan]"; no study prints a "Holm family of
    untested"; and the negative control, never tested, is said to be untested instead of having
    made "no false call" (it said "0 false call(s)")."""
    runs = pd.read_csv(NB / "results" / "06_runs.csv")
    cut = tmp_path / "06_runs_draw0.csv"
    runs[runs.data_seed == 0].to_csv(cut, index=False)
    r = _notebook_06_script(tmp_path, {"run": False, "draws": 1}, cut)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "too few draws" in out and "(untested)" in out                       # the cells were read, untested
    assert "nan" not in out.lower(), [line for line in out.splitlines() if "nan" in line.lower()][:5]
    assert "Holm family of untested" not in out
    assert "false call" not in out.replace("make false calls", "").replace("produce false calls", ""), \
        [line for line in out.splitlines() if "false call" in line]             # neither "no" nor any count
    assert "**The negative control was not tested** (too few draws)" in out          # section 4
    assert "The negative control was not tested (too few draws): this run cannot say" in out   # section 8
    assert "no cell was tested: nothing is claimed" in out
    for line in _source_lines(runs[runs.data_seed == 0]):                     # section 1: the source per size
        assert line in out, line
    assert " at n = 300, " in out


@pytest.mark.parametrize("split", ["loso", ["group_kfold", 5]])
def test_notebook_06_refuses_a_cross_validation_split(tmp_path, split):
    """06 has no fold parameter: a cross-validation split stops in the setup cell, before any
    run, saying which splits it takes (it used to crash late in the sweep asking for a fold)."""
    r = _notebook_06_script(tmp_path, {"split": split}, setup_only=True)
    assert r.returncode != 0
    assert f"split must be 'id' or 'ood', got split={split!r}" in r.stderr
    assert "python -m dcatkit sweep --split loso --folds" in r.stderr
    assert "target runs" not in r.stdout                                      # stopped before the plan


def test_notebook_06_plan_names_each_studys_split(tmp_path):
    """With split="ood" the main study (a) and (e) run on the ood split and the printed plan says
    so; (b)-(d) never take `split` (``studies.control_plan`` passes none, ``study_task`` uses its
    default), and the plan says that they run on the id split."""
    import inspect

    from dcatkit import studies

    r = _notebook_06_script(tmp_path, {"split": "ood"}, setup_only=True)
    assert r.returncode == 0, r.stderr[-3000:]
    plan = r.stdout
    assert "(a) video→imu, ood: n = [300, 1000]" in plan
    assert "(e) video→imu, ood, Table I recipe" in plan
    assert inspect.signature(studies.study_task).parameters["split"].default == "id"
    for name in ("(b) negative control", "(c) positive control", "(d) unlabeled-pairs curve"):
        assert f"{name} at 300 recordings on the id split" in plan, plan
    _, targets = studies.control_plan([dict(study="x", kind="negative", methods=["none", "dcat"])], seeds=[0],
                                      draws=[0], n_samples=300)
    assert all("split" not in t for t in targets)       # the controls' split is study_task's default


def test_notebook_06_refuses_an_n_samples_it_does_not_read(tmp_path):
    """06 simulates `sizes` and `control_size` recordings; n_samples (shared with 01-05) is not
    read. A value other than the default that is not every size stops the setup cell and names
    the parameters to set; the default, or a value equal to every size (CI's n_samples = sizes =
    control_size = 96), is accepted."""
    r = _notebook_06_script(tmp_path, {"n_samples": 500}, setup_only=True)
    assert r.returncode != 0
    assert "notebook 06 does not read n_samples (got 500)" in r.stderr and "`control_size`" in r.stderr
    ok = _notebook_06_script(tmp_path, {"n_samples": 96, "sizes": [96], "control_size": 96}, setup_only=True)
    assert ok.returncode == 0 and "data seeds [0, 1, 2]" in ok.stdout, ok.stderr[-3000:]
    default = _notebook_06_script(tmp_path, {}, setup_only=True)
    assert default.returncode == 0 and "n = [300, 1000]" in default.stdout, default.stderr[-3000:]


def _source_lines(runs: pd.DataFrame) -> list[str]:
    """Section 1's line per study, recomputed by hand: the frozen source's test F1 per size
    (mean over draws), one number where every size shows the same."""
    from dcatkit import studies

    lines = []
    for name, g in runs.groupby("study", sort=False):
        per = g.groupby("size").source_f1.mean()
        src = (f"{per.iloc[0]:.3f}" if per.round(3).nunique() == 1 else
               ", ".join(f"{v:.3f} at {studies.size_label(n, g.unit.iloc[0])}" for n, v in per.items()))
        lines.append(f"  {name}: {len(g)} runs, source test F1 {src} (mean over draws)")
    return lines


def test_notebook_06_committed_run_prints_each_sizes_source():
    """Study (a) trains a frozen source per size (and draw): the committed section 1 prints the
    source's test F1 per size (0.895 at n = 300, 0.987 at n = 1000), not one mean over both
    sizes; studies whose sizes share their source print one number. (The executed code is
    checked on the one-draw run above.)"""
    runs = pd.read_csv(NB / "results" / "06_runs.csv")
    lines = _source_lines(runs)
    main = runs[runs.study == "(a) video→imu, id"].groupby("size").source_f1.mean()
    assert main.round(3).nunique() == 2                                          # two sources, two numbers
    assert f"source test F1 {main.iloc[0]:.3f} at n = 300, {main.iloc[1]:.3f} at n = 1000" in lines[0]
    committed = _outputs_text("06_when_transfer_helps")
    for line in lines:
        assert line in committed, line
    assert "(mean over draws)" in committed and f"{runs[runs.study == '(a) video→imu, id'].source_f1.mean():.3f}" \
        not in committed.split("λ chosen")[0]                                  # the mean over sizes is gone

