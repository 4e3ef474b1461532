"""The frozen source, checkpoints and the training loop import without a circle
(issue 18 item 6), and the names ``dcatkit.train`` always offered are the ones of their homes."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "dcatkit"
HOMES = ("runtime", "checkpoint", "frozen_source", "train")     # bottom to top


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every dcatkit module ``path`` imports, at the top or inside a function (a local
    import closes a circle as well, only later)."""
    me = _module_of(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "dcatkit")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "dcatkit":
                continue
            out.add(mod)
            for a in node.names:                        # ``from . import distributed`` names a module
                if (PKG.parent / (mod.replace(".", "/") + f"/{a.name}.py")).is_file():
                    out.add(f"{mod}.{a.name}")
    return out


def _graph() -> dict[str, set[str]]:
    return {_module_of(p): _imports(p) for p in PKG.rglob("*.py")}


def test_no_import_circle_through_the_training_modules():
    graph = _graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return False

    circles = [m for m in (f"dcatkit.{h}" for h in (*HOMES, "source_cache")) if reaches(m, m)]
    assert not circles, f"import circles through {circles}"
    # and the layers: each home imports only the ones below it
    for i, h in enumerate(HOMES):
        above = {f"dcatkit.{x}" for x in HOMES[i + 1:]} | {"dcatkit.source_cache"}
        assert not graph[f"dcatkit.{h}"] & above, f"dcatkit.{h} imports {graph[f'dcatkit.{h}'] & above}"


@pytest.mark.parametrize("module", ["frozen_source", "source_cache", "checkpoint", "runtime", "train"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    """Imported first, a module in a circle meets its partner half initialised and fails;
    it must not pull in the layers above it either."""
    above = {"runtime": HOMES[1:], "checkpoint": ("frozen_source", "train"), "frozen_source": ("train",),
             "source_cache": ("train",), "train": ()}[module]
    code = (f"import sys, dcatkit.{module}\n"
            f"late = [m for m in {list(above)!r} if 'dcatkit.' + m in sys.modules]\n"
            "assert not late, late\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]


def test_train_re_exports_are_the_objects_of_their_homes():
    import dcatkit
    from dcatkit import checkpoint, frozen_source, runtime, source_cache, train

    homes = {
        runtime: ["resolve_device", "seed_everything", "make_loader", "only_modalities", "_amp_dtype", "_to"],
        checkpoint: ["save_checkpoint", "load_checkpoint", "check_source_fits", "state_path_for", "STATE_VERSION",
                     "_save_state", "_load_state", "_rng_state", "_set_rng_state"],
        frozen_source: ["LiveSource", "SourceCache", "as_source_output", "_frozen_source", "_source_lams",
                        "_source_names", "_source_id"],
    }
    for home, names in homes.items():
        for n in names:
            assert getattr(train, n) is getattr(home, n), f"dcatkit.train.{n} is not dcatkit.{home.__name__}.{n}"
    assert source_cache is frozen_source          # the older name is the same module (DEFAULT_DIR set there)
    assert dcatkit.load_checkpoint is checkpoint.load_checkpoint and dcatkit.fit is train.fit
