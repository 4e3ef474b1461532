"""The notebooks are their own source, and what a generator used to guarantee is checked here.

Each ``notebooks/NN_name.ipynb`` is edited in JupyterLab and paired by jupytext (notebook
metadata ``"jupytext": {"formats": "ipynb,py:percent"}``) with ``notebooks/NN_name.py``, a
percent script that gives reviewable diffs. Saving in JupyterLab (jupytext is installed with the
``dev`` extra) writes both files; after editing either file alone, ``jupytext --sync
notebooks/*.ipynb`` copies the newer file's cells into the other (outputs stay in the .ipynb).

These tests fail when
- a pair is out of sync: cell types, sources or tags differ between the .ipynb and its .py
  (compared through jupytext, not as raw text; outputs and execution metadata are ignored);
- a notebook's first code cell is not the one cell tagged exactly ``parameters``, or holds
  anything but ``name = literal`` lines (papermill injects overrides after it);
- the shared parameter block differs between notebooks: the ``# --- data`` and ``# --- outputs``
  sections of every notebook and the ``# --- training`` section of every training notebook are
  the same text, and a parameter defined in several notebooks has the same default everywhere;
- the code that names the data options and the checkpoints (``data_opts``, ``data_key``,
  ``ck_source``, ...) differs between notebooks, so one notebook would not find another's models.
"""
import ast
import difflib
import re
from pathlib import Path

import jupytext
import pytest

REPO = Path(__file__).resolve().parent.parent
NB = REPO / "notebooks"
NOTEBOOKS = sorted(p.stem for p in NB.glob("[0-9][0-9]_*.ipynb"))
TRAINING = [n for n in NOTEBOOKS if not n.startswith("01_")]  # 01 only looks at the data
FORMATS = "ipynb,py:percent"
# Section titles of the parameter cell (``# --- title ----``) and the notebooks that must share them.
SHARED_SECTIONS = {"data": NOTEBOOKS, "outputs": NOTEBOOKS, "training": TRAINING}
# Names whose assignment must be the same expression wherever a notebook makes it.
SHARED_NAMES = ("data_opts", "data_key", "ck_source", "ck_baseline", "ck_dcat", "only", "splits")
SYNC_HINT = ("open it in JupyterLab and save (jupytext writes both files), or run "
             "`jupytext --sync notebooks/{name}.ipynb` (the newer of the two files wins)")


def cells(nb):
    """(type, source, tags) of every cell: what a pair must agree on."""
    return [(c.cell_type, c.source, tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def read(name: str, ext: str = ".ipynb"):
    return jupytext.read(NB / f"{name}{ext}")


def code_cells(name: str):
    return [c for c in read(name).cells if c.cell_type == "code"]


def parameters(name: str) -> str:
    return code_cells(name)[0].source


def sections(source: str) -> dict[str, str]:
    """Split a parameter cell at its ``# --- title ---`` lines: {title: the lines under it}."""
    out, title = {}, None
    for line in source.splitlines():
        m = re.match(r"#\s*---\s*(.*?)\s*-*\s*$", line)
        if m:
            title = m.group(1).split(" (")[0]
            assert title not in out, f"section {title!r} appears twice"
            out[title] = []
        elif title is not None:
            out[title].append(line)
    return {t: "\n".join(lines).strip("\n") for t, lines in out.items()}


def defaults(name: str) -> dict:
    """{parameter: default} of the literal assignments (test_parameters_cell reports anything else)."""
    out = {}
    for node in ast.parse(parameters(name)).body:
        try:
            out[node.targets[0].id] = ast.literal_eval(node.value)
        except (AttributeError, ValueError):
            pass
    return out


def test_notebooks_found():
    core = {"01_preprocessing", "02_unimodal", "03_transfer", "04_lambda_ablation", "05_confusion_analysis"}
    assert core <= set(NOTEBOOKS), f"expected notebooks {sorted(core)} in {NB}, found {NOTEBOOKS}"
    assert not (NB / "build_notebooks.py").exists(), "the notebooks are their own source; no generator"


def test_every_notebook_is_paired():
    scripts = sorted(p.stem for p in NB.glob("*.py"))
    assert scripts == NOTEBOOKS, (f"notebooks/ holds the scripts {scripts} for the notebooks {NOTEBOOKS}: "
                                  "every .py there is the jupytext pair of one .ipynb and vice versa")
    for name in NOTEBOOKS:
        fmt = read(name).metadata.get("jupytext", {}).get("formats")
        assert fmt == FORMATS, (f"{name}.ipynb is paired as {fmt!r}, expected {FORMATS!r}: run "
                                f"`jupytext --set-formats {FORMATS} notebooks/{name}.ipynb`")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_pair_in_sync(name):
    ipynb, script = cells(read(name)), cells(read(name, ".py"))
    if ipynb != script:
        lines = lambda cs: [f"{t} {list(tags)}: {line}" for t, src, tags in cs for line in src.splitlines() or [""]]
        diff = "\n".join(list(difflib.unified_diff(lines(ipynb), lines(script), f"{name}.ipynb", f"{name}.py",
                                                   lineterm=""))[:40])
        pytest.fail(f"{name}.ipynb and {name}.py differ: {SYNC_HINT.format(name=name)}\n{diff}")
    injected = [i for i, (_, _, tags) in enumerate(ipynb) if "injected-parameters" in tags]
    assert not injected, (f"{name}.ipynb holds papermill's injected-parameters cell (cell {injected[0]}): "
                          "it was executed in place with -p; delete that cell")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell(name):
    tagged = [i for i, c in enumerate(code_cells(name)) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], f"{name}: the first code cell, and only it, must be tagged `parameters` (tagged: {tagged})"
    assert code_cells(name)[0].metadata["tags"] == ["parameters"], f"{name}: the parameters cell has other tags"
    for node in ast.parse(parameters(name)).body:
        flat = (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name))
        assert flat, f"{name}: the parameters cell may only hold `name = literal` lines, found {ast.unparse(node)!r}"
        try:
            ast.literal_eval(node.value)
        except ValueError:
            pytest.fail(f"{name}: parameter {ast.unparse(node)!r} is not a literal (papermill overrides literals)")


def test_shared_parameter_sections():
    per_nb = {name: sections(parameters(name)) for name in NOTEBOOKS}
    for title, names in SHARED_SECTIONS.items():
        for name in names:
            assert title in per_nb[name], f"{name}: the parameters cell has no `# --- {title} ---` section"
    titles = {t for s in per_nb.values() for t in s}
    for title in sorted(titles):
        having = {name: s[title] for name, s in per_nb.items() if title in s}
        first, text = next(iter(having.items()))
        for name, other in having.items():
            if other != text:
                diff = "\n".join(difflib.unified_diff(text.splitlines(), other.splitlines(), first, name, lineterm=""))
                pytest.fail(f"the `# --- {title} ---` parameter section differs between notebooks; it must be the "
                            f"same text in {sorted(having)}:\n{diff}")


def test_shared_parameter_defaults():
    seen: dict[str, tuple[str, object]] = {}
    for name in NOTEBOOKS:
        for param, value in defaults(name).items():
            first = seen.setdefault(param, (name, value))
            assert first[1] == value, (f"parameter {param!r} defaults to {first[1]!r} in {first[0]} but to "
                                       f"{value!r} in {name}: a parameter means one thing in every notebook")


def test_shared_setup_code():
    """data_opts, data_key, checkpoint names, ...: one expression each, in every notebook that has it."""
    seen: dict[str, tuple[str, str, str]] = {}
    for name in NOTEBOOKS:
        for cell in code_cells(name)[1:]:
            for node in ast.walk(ast.parse(cell.source)):
                if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                        and node.targets[0].id in SHARED_NAMES):
                    var, expr = node.targets[0].id, ast.dump(node.value)
                    first = seen.setdefault(var, (name, expr, ast.unparse(node.value)))
                    assert first[1] == expr, (f"`{var} = ...` differs between notebooks: {first[0]} has "
                                              f"{first[2]!r}, {name} has {ast.unparse(node.value)!r}")
    missing = {"data_opts", "data_key", "ck_source", "ck_baseline", "splits"} - set(seen)
    assert not missing, f"no notebook assigns {sorted(missing)}: update SHARED_NAMES in this test"
