"""Run a notebook as its jupytext percent script, with parameters, where papermill is absent
(the lent GPU machine has no papermill, jupytext or, possibly, IPython).

    python benchmarks/notebook_script.py 06_when_transfer_helps OUT [--timeout 300] [-p name=JSON ...]

The parameters (``name=JSON``: ``-p draws=1 -p seeds=[0,1]``; a value that is not JSON is a
string) are assigned after the notebook's parameters cell, as papermill injects them;
``IPython.display`` is stubbed when IPython is missing (``display`` prints). Writes
OUT/<name>.py (the script run), OUT/<name>.log (its output) and prints one JSON line:
{"notebook", "rc", "wall_s", "params"}. Used by benchmarks/paper_e2e.py (notebook 03) and
benchmarks/gpu_check.sh (part nb06: notebook 06's default grid timed on the GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STUB = '''
try:
    import IPython.display  # noqa: F401
except ImportError:                      # a plain python run: display() prints
    import sys, types
    _m = types.ModuleType("IPython.display")
    _m.display = lambda *a, **k: [print(getattr(x, "data", x)) for x in a]
    _m.Markdown = _m.HTML = lambda s: s
    # Only IPython.display: `from IPython.display import ...` finds it in sys.modules. A stub
    # "IPython" would tell matplotlib and tqdm that IPython is loaded, and pyplot's first figure
    # then asks it for get_ipython() and version_info (notebooks 03 and 06 died there).
    sys.modules["IPython.display"] = _m
'''


def script_with(name: str, params: dict) -> str:
    """notebooks/<name>.py with ``params`` assigned right after its parameters cell."""
    text = (ROOT / "notebooks" / f"{name}.py").read_text()
    marker = '# %% tags=["parameters"]'
    if marker not in text:
        raise ValueError(f"notebooks/{name}.py has no parameters cell ({marker!r})")
    cell = text.index(marker)
    nxt = text.index("\n# %%", cell + 1)
    inject = "\n# injected by benchmarks/notebook_script.py\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items())
    return STUB + text[:nxt] + inject + text[nxt:]


def _stop(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run_notebook_script(name: str, params: dict, out: Path, timeout: float | None = None) -> dict:
    """Run notebook ``name`` as a script with ``params`` (cwd notebooks/, dcatkit from this
    checkout on PYTHONPATH, Agg backend); its output goes to OUT/<name>.log.

    The notebook runs in a process group of its own, killed as a whole when it ends, times out,
    or this process is interrupted (Ctrl-C, SIGTERM from gpu_check.sh's ``timeout``): a sweep's
    spawned workers outlive a killed notebook (nothing tells them their parent is gone), and
    went on training on the GPU, and writing into OUT while the next step ran and it was packed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    script = out / f"{name}.py"
    script.write_text(script_with(name, params))
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t = time.perf_counter()
    main = threading.current_thread() is threading.main_thread()     # where a signal handler can be set
    before = signal.signal(signal.SIGTERM, _stop) if main else None
    with open(out / f"{name}.log", "w") as log:
        # run_path from `-c`, not `python script.py`: a sweep's spawned workers would re-run a main
        # script (multiprocessing re-imports __main__ from its path); a notebook has no main guard
        p = subprocess.Popen([sys.executable, "-c", f"import runpy; runpy.run_path({str(script)!r}, "
                              "run_name='notebook')"], cwd=ROOT / "notebooks", env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)        # the notebook and whatever it started
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()
            if main and before is not None:     # None: a handler installed outside Python, left as it is
                signal.signal(signal.SIGTERM, before)
    return {"notebook": name, "rc": rc, "wall_s": time.perf_counter() - t, "params": params}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="notebook name without extension, e.g. 06_when_transfer_helps")
    ap.add_argument("out", type=Path)
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=JSON")
    a = ap.parse_args()
    params = {}
    for p in a.param:
        k, sep, v = p.partition("=")
        if not sep:
            ap.error(f"a parameter is NAME=JSON, got {p!r}")
        params[k] = _value(v)
    res = run_notebook_script(a.name, params, a.out, a.timeout)
    print(json.dumps(res), flush=True)
    sys.exit(0 if res["rc"] == 0 else 1)


if __name__ == "__main__":
    main()
