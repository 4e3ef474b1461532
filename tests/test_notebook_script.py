"""benchmarks/notebook_script.py: a notebook run as its percent script with injected parameters
(the GPU machine's way, with no notebook executor installed): the parameters land after the parameters cell, so they
override its defaults and everything after sees them, and display() works without IPython."""
import ast
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "notebook_script", Path(__file__).resolve().parents[1] / "benchmarks" / "notebook_script.py")
notebook_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebook_script)


def _assignments(src: str) -> list[tuple[str, object]]:
    out = []
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out.append((node.targets[0].id, ast.literal_eval(node.value)))
            except ValueError:
                pass
    return out


def test_parameters_are_assigned_after_the_parameters_cell():
    src = notebook_script.script_with("06_when_transfer_helps", {"draws": 1, "seeds": [0, 1], "out_dir": "/x"})
    names = [n for n, _ in _assignments(src)]
    default, injected = names.index("draws"), len(names) - 1 - names[::-1].index("draws")
    assert default < injected                                         # the default first, then the override
    last = {}
    for n, v in _assignments(src):
        last[n] = v
    assert last["draws"] == 1 and last["seeds"] == [0, 1] and last["out_dir"] == "/x"
    body = src[src.index("# injected by"):]
    assert "import" in body.split("# %%")[1]                          # the next cell (the imports) comes after


def test_cli_values_are_json_or_strings():
    assert notebook_script._value("[0, 1]") == [0, 1] and notebook_script._value("3") == 3
    assert notebook_script._value('"cuda"') == "cuda" and notebook_script._value("cuda") == "cuda"


def test_stub_stands_in_for_a_missing_ipython_under_pyplot(tmp_path):
    """Where IPython is not installed (the lent GPU machine), the stub's module must satisfy what
    matplotlib asks of a loaded IPython: pyplot's first figure calls IPython.get_ipython()
    (install_repl_displayhook). Without it notebooks 03 and 06 died at their first plot there."""
    import subprocess
    import sys
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name == 'IPython' or name.startswith('IPython.'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            + notebook_script.STUB +
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots()\n"
            "from IPython.display import display, Markdown\n"
            "display(Markdown('shown'))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin", "MPLCONFIGDIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "shown"


def test_a_timed_out_notebook_takes_the_processes_it_started_with_it(tmp_path, monkeypatch):
    """Notebook 06 trains through a sweep whose workers are spawned processes. When its run hit
    the timeout only the notebook's own process was killed: its workers, told nothing, went on
    training on the GPU and writing under OUT while gpu_session.sh packed it and the call ended.
    Here a stand-in notebook starts a child that sleeps; after the timeout that child is gone too
    (15 s: the stand-in has started its child by then on a machine as loaded as the GPU suite's)."""
    import os
    import time

    import pytest
    if not Path("/proc/self/stat").is_file():
        pytest.skip("reads a process's state from /proc (Linux)")
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "nb.py").write_text(
        '# %% tags=["parameters"]\npidfile = ""\n\n# %%\nimport subprocess, sys, time\n'
        'child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])\n'
        'open(pidfile, "w").write(str(child.pid))\ntime.sleep(120)\n')
    monkeypatch.setattr(notebook_script, "ROOT", root)
    pidfile = tmp_path / "child.pid"
    res = notebook_script.run_notebook_script("nb", {"pidfile": str(pidfile)}, tmp_path / "out", timeout=15)
    assert res["rc"] == "timeout"
    pid = int(pidfile.read_text())

    def running(pid: int) -> bool:
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie is dead
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = running(pid)
    if alive:
        os.kill(pid, 9)
    assert not alive, f"the notebook's child {pid} outlived the notebook's timeout"
