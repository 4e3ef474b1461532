"""Session-wide test settings.

Device: the tests train with ``device="auto"`` (CUDA when a GPU is visible, else the CPU),
as the library does; a test that must be bit for bit pins ``device="cpu"`` itself. One knob
chooses the device of the whole session, subprocesses included:

    DCATKIT_TEST_DEVICE=auto   (default) CUDA when visible, else CPU
    DCATKIT_TEST_DEVICE=cpu    hide every GPU (CUDA_VISIBLE_DEVICES="", set before torch starts CUDA)
    DCATKIT_TEST_DEVICE=cuda   a GPU must be visible, else the session stops with that message
                               (``make test-gpu``)

A test file whose imports are missing (the GPU machine has no papermill, jupytext, PyAV,
soundfile, ...) is reported as one skipped test naming the packages, not a collection error;
where everything is installed (CI, ``make test``) nothing changes.

Subprocesses (the killed resume worker, torchrun workers, CLI runs) import dcatkit from this
checkout: the repository root is put on their PYTHONPATH, so a plain copy without
``pip install -e .`` runs the suite (``PYTHONPATH=. python -m pytest``).
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVICE = os.environ.get("DCATKIT_TEST_DEVICE", "auto")
if DEVICE not in ("auto", "cpu", "cuda"):
    raise ValueError(f"DCATKIT_TEST_DEVICE must be 'auto', 'cpu' or 'cuda', got {DEVICE!r}")
if DEVICE == "cpu":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""          # before anything initialises CUDA
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)

import ast  # noqa: E402
import importlib.util  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import dcatkit.source_cache  # noqa: E402


def pytest_sessionstart(session):
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("DCATKIT_TEST_DEVICE=cuda but torch sees no CUDA device "
                                f"(torch {torch.__version__}, CUDA_VISIBLE_DEVICES="
                                f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r})")


def pytest_report_header(config):
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return f"dcatkit test device: {dev} (DCATKIT_TEST_DEVICE={DEVICE})"


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Where device="auto" trains in this session."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(autouse=True, scope="session")
def _isolated_source_cache(tmp_path_factory):
    """Frozen-source caches of the tests go to a temporary folder, not ~/.cache."""
    dcatkit.source_cache.DEFAULT_DIR = tmp_path_factory.mktemp("source_cache")
    yield


NOTEBOOK_PACKAGES = ("papermill", "nbclient", "ipykernel")   # files that execute notebooks need them too


def _missing_packages(path: Path) -> list[str]:
    """Top-level imports of a test file (and, for files that run notebooks, papermill and its
    kernel) that cannot be found."""
    text = path.read_text()
    names = set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    if "papermill" in text:
        names |= set(NOTEBOOK_PACKAGES)
    return sorted(n for n in names if importlib.util.find_spec(n) is None)


class _NeedsPackages(pytest.File):
    def collect(self):
        yield _Skip.from_parent(self, name=self.path.name, reason=self.reason)


class _Skip(pytest.Item):
    def __init__(self, *, reason: str, **kw):
        super().__init__(**kw)
        self.reason = reason

    def runtest(self):
        pytest.skip(self.reason)

    def reportinfo(self):
        return self.path, 0, self.name


def pytest_pycollect_makemodule(module_path, parent):
    missing = _missing_packages(Path(module_path))
    if missing:
        f = _NeedsPackages.from_parent(parent, path=Path(module_path))
        f.reason = f"{Path(module_path).name} needs {', '.join(missing)}, not installed here"
        return f
    return None
