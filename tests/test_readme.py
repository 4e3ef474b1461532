"""Every command and snippet README.md shows, run at CI size, so the README cannot drift from the kit.

Extraction (markdown-it, CommonMark): every code block of README.md is picked up, new ones too.
- A fenced block tagged ``python`` / ``py`` is a Python snippet, run as one script.
- An indented block, or a fenced block tagged ``bash`` / ``sh`` / ``shell`` / ``console`` or
  untagged, holds shell commands: one test per command (backslash continuations and
  ``for ... done`` loops are one command; comment lines are dropped). The commands of a block run
  in order in the same folder, so a later one may use what an earlier one wrote.
- Blocks tagged otherwise (``text``, ``json``, ...) are not commands: use that for output.
- An HTML comment ``<!-- readme-test: skip REASON -->`` right before a block skips it, with REASON.

Where they run: a fresh folder laid out like a clone (the notebooks, the Makefile and
``benchmarks/headroom_runs.csv`` copied,
``DCATKIT_ROOT`` pointing at it, so the notebooks' relative ``out_dir`` land there), with this
environment's ``python`` and ``papermill`` first on PATH. Nothing is written into the repository.

CI size: only size parameters are rewritten (the sizes are ``tests/ci_size.py``):
- ``papermill NB OUT ...``: ``-p NAME VALUE`` appended for each CI size parameter NB declares;
- ``python -m dcatkit CMD ...``: the size flags of ``CLI_SIZE[CMD]`` appended;
- ``make TARGET``: run with ``PY=<this python> STAMP=`` (no install); ``make demo`` also gets
  ``DEMO_PARAMS=<the papermill -p sizes>``;
- ``for VAR in a b c ...; do``: only its first two values (a sweep's size);
- Python: calls of ``load(..., n_samples=...)`` get the CI ``n_samples`` / ``frame_size`` /
  ``n_frames``, calls of ``train_unimodal`` / ``train_transfer`` get ``epochs=1``.

Skipped, with the reason shown by ``pytest -ra``: commands that need several GPUs or nodes
(torchrun), a real dataset on disk, ``make test`` (this suite) and ``make notebooks`` (rewrites
the committed notebooks); a skipped ``make`` target is still dry-run (``make -n``) so it exists.
"""
import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

import ci_size

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PY = Path(sys.executable)
SHELL_TAGS = {"", "bash", "sh", "shell", "console"}
PYTHON_TAGS = {"python", "py"}
MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s*(.*?)\s*-->", re.S)
# Shell commands that cannot run here, and why (checked in order, on the command's text).
NEEDS = [
    (re.compile(r"\btorchrun\b"), "needs several GPUs or nodes (torchrun); tests/test_distributed.py runs the same "
                                  "code as 2 CPU processes with the gloo backend"),
    (re.compile(r"-p\s+data_root\b|--root\b"), "needs a real dataset downloaded (data_root); the loaders are tested "
                                               "on files in the datasets' layouts in tests/test_data_*.py"),
    (re.compile(r"^make\s+test\b"), "is this test suite"),
    (re.compile(r"^make\s+notebooks\b"), "executes the six committed notebooks in place (~30 min from scratch); their papermill "
                                         "runs at CI size are tests/test_notebooks.py, the pairs "
                                         "tests/test_notebook_pairs.py"),
]
CLI_SIZE = {
    "demo": ["--n-samples", str(ci_size.DATA["n_samples"]), "--epochs-source", "1", "--epochs-target", "1"],
    "train": ["--n-samples", str(ci_size.DATA["n_samples"]), "--epochs", "1"],
    "transfer": ["--n-samples", str(ci_size.DATA["n_samples"]), "--epochs", "1"],
    "sweep": ["--sizes", str(ci_size.DATA["n_samples"]), "--seeds", "0", "1", "--epochs-source", "1",
              "--epochs-target", "1", "--workers", "0"],
}
CI_PARAMS = {**ci_size.DATA, **ci_size.TRAIN}
TIMEOUT_S = 900


@dataclass
class Block:
    line: int            # 1-based line of the block's first line in README.md
    kind: str            # "shell" or "python"
    text: str
    skip: str | None     # reason from a readme-test marker


def blocks(markdown: str) -> list[Block]:
    tokens = MarkdownIt().parse(markdown)
    out = []
    for i, tok in enumerate(tokens):
        if tok.type not in ("fence", "code_block"):
            continue
        tag = tok.info.strip().split()[0].lower() if tok.type == "fence" and tok.info.strip() else ""
        kind = "python" if tag in PYTHON_TAGS else "shell" if tag in SHELL_TAGS else None
        if kind is None:
            continue
        prev = tokens[i - 1] if i else None
        marker = MARKER.search(prev.content) if prev is not None and prev.type == "html_block" else None
        out.append(Block(tok.map[0] + 1, kind, tok.content, marker.group(1) or "marked" if marker else None))
    return out


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a # outside quotes, after a space)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def commands(text: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, a for/while loop kept whole."""
    out, cur, depth = [], [], 0
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line.strip():
            continue
        cur.append(line)
        depth += bool(re.match(r"\s*(for|while|until)\b", line)) - bool(re.match(r"\s*done\b", line))
        if depth == 0 and not line.endswith("\\"):
            out.append("\n".join(cur))
            cur = []
    assert not cur, f"unterminated command in a README block: {cur}"
    return out


def skip_reason(cmd: str) -> str | None:
    for pattern, reason in NEEDS:
        if pattern.search(cmd.strip()):
            return reason
    return None


def ci_command(cmd: str, clone: Path) -> str:
    """``cmd`` with its size parameters rewritten to the CI size (see the module docstring)."""
    import papermill

    lines = []
    for line in re.sub(r"\\\n\s*", " ", cmd).split("\n"):     # continuation lines joined first
        m = re.match(r"(\s*for\s+\w+\s+in\s+)(.+?)(\s*;\s*do\b.*)$", line)
        if m:                                               # a sweep: its first two values
            line = m.group(1) + " ".join(m.group(2).split()[:2]) + m.group(3)
        m = re.search(r"\bpapermill\s+(\S+\.ipynb)\b", line)
        if m:
            declared = papermill.inspect_notebook(str(clone / m.group(1)))
            line += " " + " ".join(ci_size.papermill_args({k: v for k, v in CI_PARAMS.items() if k in declared}))
        m = re.search(r"\bpython\s+-m\s+dcatkit\s+(\w+)", line)
        if m:
            assert m.group(1) in CLI_SIZE, (f"README runs `python -m dcatkit {m.group(1)}`: add its size flags to "
                                            f"CLI_SIZE in {__file__}")
            line += " " + " ".join(CLI_SIZE[m.group(1)])
        m = re.match(r"(\s*make\s+[\w-]+)(.*)$", line)
        if m:
            extra = f" PY={shlex.quote(str(PY))} STAMP="
            if m.group(1).split()[-1] == "demo":
                pm = ci_size.papermill_args(CI_PARAMS)
                extra += " DEMO_PARAMS=" + shlex.quote(" ".join(pm))
            line = m.group(1) + extra + m.group(2)
        lines.append(line)
    return "\n".join(lines)


class CISize(ast.NodeTransformer):
    """Python snippets at CI size: load(..., n_samples=...) and the train_* calls get small sizes."""

    def visit_Call(self, node):
        self.generic_visit(node)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        kw = {k.arg: k for k in node.keywords}
        sizes = {}
        if name == "load" and "n_samples" in kw:           # synthetic data (only it takes n_samples)
            sizes = ci_size.DATA
        elif name in ("train_unimodal", "train_transfer"):
            sizes = {"epochs": ci_size.TRAIN["epochs"]}
        for k, v in sizes.items():
            if k in kw:
                kw[k].value = ast.Constant(v)
            else:
                node.keywords.append(ast.keyword(k, ast.Constant(v)))
        return node


def ci_snippet(code: str) -> str:
    return ast.unparse(ast.fix_missing_locations(CISize().visit(ast.parse(code))))


# --------------------------------------------------------------------------- the README's blocks

BLOCKS = blocks(README.read_text())
SHELL = [(b, i, c) for b in BLOCKS if b.kind == "shell" for i, c in enumerate(commands(b.text))]
SNIPPETS = [b for b in BLOCKS if b.kind == "python"]


def _id(cmd: str, line: int) -> str:
    return f"L{line}:" + re.sub(r"\s+", " ", cmd)[:50]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A folder laid out like a fresh clone, and the environment the README's commands run in."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("*.py", "*.md"))
    shutil.copy(REPO / "Makefile", root / "Makefile")
    (root / "benchmarks").mkdir()                 # notebook 06 reads the stored IMU ceilings from here
    shutil.copy(REPO / "benchmarks" / "headroom_runs.csv", root / "benchmarks" / "headroom_runs.csv")
    env = {**os.environ, "PATH": f"{PY.parent}{os.pathsep}{os.environ.get('PATH', '')}", "DCATKIT_ROOT": str(root),
           "DCATKIT_CACHE": str(root / ".source_cache"), "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("VIRTUAL_ENV", None)
    return {"root": root, "env": env, "done": {}}


def _run_shell(clone, line: int, cmd: str):
    script = ci_command(cmd, clone["root"])
    r = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], cwd=clone["root"], env=clone["env"],
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    out = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, (f"README.md line {line}: command failed (exit {r.returncode})\nas written:\n{cmd}\n"
                               f"as run (CI size, in {clone['root']}):\n{script}\noutput:\n{out}")
    return r


def test_readme_has_commands():
    assert SHELL and SNIPPETS, f"found no shell commands or no python snippet in {README}: the extraction broke"


@pytest.mark.parametrize("block,index,cmd", SHELL, ids=[_id(c, b.line) for b, _, c in SHELL])
def test_readme_command(block, index, cmd, clone):
    reason = block.skip or skip_reason(cmd)
    if reason:
        m = re.match(r"\s*make\s+([\w-]+)", cmd)
        if m:                                           # the target exists and expands
            r = subprocess.run(["make", "-n", m.group(1), f"PY={PY}", "STAMP="], cwd=clone["root"],
                               env=clone["env"], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, f"`make -n {m.group(1)}` failed:\n{r.stdout}{r.stderr}"
        pytest.skip(f"README.md line {block.line}: `{cmd.splitlines()[0]}` {reason}")
    # the block's earlier commands first (they may write what this one reads), once each
    for b, i, c in SHELL:
        if b is block and i < index and (b.line, i) not in clone["done"] and not (b.skip or skip_reason(c)):
            clone["done"][(b.line, i)] = _run_shell(clone, b.line, c)
    r = clone["done"][(block.line, index)] = _run_shell(clone, block.line, cmd)
    if re.match(r"\s*make\s+demo\b", cmd):
        check_demo_output(r.stdout, r.stderr)


def check_demo_output(stdout: str, stderr: str) -> None:
    """`make demo` ends with the run's table: the baseline, D-CAT and No MCMA rows with their F1
    (a number), and no ERROR line reaches the terminal (issue 19: it printed 'Empty DataFrame'
    and '[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.')."""
    errors = [line for line in (stdout + stderr).splitlines() if re.search(r"\bERROR\b", line)]
    assert not errors, f"`make demo` printed ERROR lines: {errors}"
    assert "Empty DataFrame" not in stdout
    table = stdout[stdout.rindex("transfer-"):]
    head = next(line for line in table.splitlines() if re.search(r"\bf1\b", line))
    col = head.split().index("f1")
    for row in ("imu baseline", "D-CAT", "No MCMA"):
        line = next((x for x in table.splitlines() if x.startswith(row + " ")), None)
        assert line is not None, f"`make demo` printed no {row!r} row:\n{table}"
        f1 = line[len(row):].split()[col - 1]          # the columns after the run name
        assert 0.0 <= float(f1) <= 1.0, f"{row}: F1 {f1!r}"


def test_check_demo_output_catches_what_the_issue_saw():
    good = ("outputs/03_transfer/transfer-synthetic-id-video-imu-73fd63243c-lam1-seed0.csv:\n"
            "              modality  accuracy  precision  recall    f1  delta_f1\n"
            "run\nvideo source    video     0.990 0.990 0.990 0.986 0.171\nimu baseline    imu 0.820 0.810 0.815 0.815 0.000\n"
            "D-CAT    imu 0.820 0.820 0.816 0.816 0.001\nNo MCMA    imu 0.790 0.790 0.785 0.785 -0.030\n")
    check_demo_output(good, "Input Notebook: ...\n")
    with pytest.raises(AssertionError, match="ERROR lines"):
        check_demo_output(good, "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n")
    with pytest.raises(AssertionError):
        check_demo_output("outputs/03_transfer/theorem41.csv:\nEmpty DataFrame\nColumns: []\n"
                          "Index: [imu baseline, D-CAT, No MCMA]\n", "")


@pytest.mark.parametrize("block", SNIPPETS, ids=[f"L{b.line}:python" for b in SNIPPETS])
def test_readme_python_snippet(block, clone, tmp_path):
    if block.skip:
        pytest.skip(f"README.md line {block.line}: {block.skip}")
    script = tmp_path / f"readme_L{block.line}.py"
    script.write_text(ci_snippet(block.text))
    r = subprocess.run([str(PY), str(script)], cwd=clone["root"], env=clone["env"], capture_output=True, text=True,
                       timeout=TIMEOUT_S)
    assert r.returncode == 0, (f"README.md line {block.line}: the Python snippet failed\nas run (CI size, in "
                               f"{clone['root']}):\n{script.read_text()}\noutput:\n{(r.stdout + r.stderr)[-6000:]}")


# --------------------------------------------------------------------------- the extraction itself


def test_extraction_and_rewrites():
    md = ("text\n\n    make demo   # a comment\n    make test\n\n<!-- readme-test: skip needs a GPU -->\n"
          "```bash\nfor x in 1 2 3; do\n  papermill notebooks/03_transfer.ipynb o$x.ipynb -p lam $x\ndone\n"
          "python -m dcatkit train --modality imu \\\n    --out a.pt\n```\n\n```text\nnot a command\n```\n\n"
          "```python\nsplits = load('synthetic', n_samples=2000)\nr = train_unimodal(splits, 'imu')\n```\n")
    got = blocks(md)
    assert [(b.line, b.kind, b.skip) for b in got] == [(3, "shell", None), (7, "shell", "needs a GPU"),
                                                       (19, "python", None)]
    assert commands(got[0].text) == ["make demo", "make test"]
    loop, train = commands(got[1].text)
    assert loop.startswith("for x in 1 2 3; do") and loop.endswith("done") and "--out a.pt" in train
    run = ci_command(loop, REPO)
    assert "for x in 1 2; do" in run
    assert "-p n_samples 96" in run and "-p epochs 1" in run and "-p lam $x" in run
    assert ci_command(train, REPO).endswith("--out a.pt --n-samples 96 --epochs 1")
    assert skip_reason("make test") and skip_reason("torchrun -m dcatkit demo") and not skip_reason("make demo")
    assert "STAMP= DEMO_PARAMS=" in ci_command("make demo", REPO)
    code = ci_snippet(got[2].text)
    assert "n_samples=96" in code and "frame_size=16" in code and "train_unimodal(splits, 'imu', epochs=1)" in code
