"""JupyterLab in a real browser: the notebooks as a person uses them.

Starts ``jupyter lab`` from this environment (``sys.executable -m jupyterlab``) on a free
loopback port with a random token and its own settings / runtime / config folders, and drives
the system Chromium through Playwright (``executable_path``: nothing downloads a browser; never
``playwright install``). Copies of the notebooks, with CI-size parameters injected after their
``parameters`` cell by papermill (``--prepare-only``: nothing executed) and every output going
to a temporary folder, are opened and run with Run > Run All Cells, as a person would:

- 01_preprocessing: every cell runs without an error output, the ipywidgets sample browser
  renders, and choosing another class in its dropdown changes what it shows;
- 03_transfer: the training progress bars render as widgets (tqdm.auto in JupyterLab), the
  results table appears, and the alignment explorer (dcatkit.explore) renders; pressing its
  "train steps" button trains a copy of the target and redraws (L_CA line and figure change), and
  unticking MCMA redraws with nothing dropped;
- 06_when_transfer_helps with ``run=False`` (a fresh clone: nothing trained, the committed
  ``notebooks/results/06_runs.csv`` read): the results explorer renders, and choosing another
  study, then another size, redraws its line and figure for that choice.

Screenshots go to ``outputs/browser/`` for a person to look at. Without Chromium or playwright
the test is skipped with a message saying how to enable it; under ``CI=true`` (set by
``.ci/run``) that skip is a failure.
"""
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import ci_size

REPO = Path(__file__).resolve().parent.parent
NB = REPO / "notebooks"
SHOTS = REPO / "outputs" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ENABLE = ("install the system Chromium (Debian/Ubuntu: `apt-get install -y chromium`) and the dev extra "
          "(`pip install -e '.[dev]'`, which brings playwright); `.ci/run` does both. The test uses the system "
          "browser: never run `playwright install`")
# JupyterLab user settings for the test: start the notebook's kernel without asking, no news or update
# checks (no network, no pop-up over the notebook), no autosave (the copies stay as they are).
LAB_SETTINGS = {"@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
                "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                "@jupyterlab/docmanager-extension/plugin": {"autosave": False}}
# Generous waits (the machine may be shared); a timeout says which step it was.
START_S, KERNEL_S, RUN_S, WIDGET_S = 180, 180, 600, 60


def _unavailable(why: str):
    msg = f"browser test not run: {why}. To enable it: {ENABLE}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{msg}. CI=true, where a skipped browser test is a failure")
    pytest.skip(msg)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _unavailable("no `chromium` on PATH")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the Python package playwright is not installed")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(name: str, params: dict, folder: Path) -> Path:
    """A copy of notebooks/<name>.ipynb in ``folder`` with ``params`` injected (papermill, not executed)."""
    import papermill

    dst = folder / f"{name}.ipynb"
    papermill.execute_notebook(str(NB / f"{name}.ipynb"), str(dst), parameters=params, prepare_only=True,
                               kernel_name="python3", progress_bar=False, log_output=False)
    return dst


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base url, token, notebook folder) of a JupyterLab server running in a temporary folder."""
    chromium = _chromium()
    root = tmp_path_factory.mktemp("lab")
    work, out = root / "notebooks", root / "out"
    work.mkdir()
    for rel, value in LAB_SETTINGS.items():
        f = root / "settings" / f"{rel}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    sizes = {**ci_size.DATA, "out_dir": str(out), "figures_dir": str(out / "figures")}
    _prepare("01_preprocessing", sizes, work)
    _prepare("03_transfer", {**sizes, **ci_size.TRAIN}, work)
    _prepare("06_when_transfer_helps", {"out_dir": str(out), "figures_dir": str(out / "figures"), "run": False}, work)

    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
           "DCATKIT_CACHE": str(root / "source_cache"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    env.pop("MPLBACKEND", None)                      # the kernel's inline backend draws the figures
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.expose_app_in_browser=True"]    # window.jupyterapp: the test reads cell outputs from the model
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")                   # CI containers run as root
    log = root / "jupyterlab.log"
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if time.perf_counter() - t0 > START_S:
                    pytest.fail(f"jupyter lab did not answer on {url} within {START_S}s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        print(f"jupyter lab up in {time.perf_counter() - t0:.1f}s")
        yield {"url": url, "token": token, "work": work, "out": out, "log": log, "chromium": chromium}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=lab["chromium"], args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# --------------------------------------------------------------------------- helpers

# Per code cell of the open notebook: its execution count and its outputs (type, and for errors
# ename / evalue / traceback; for streams the stream name and text), read from JupyterLab's model.
CELLS_JS = """(path) => {
  const panel = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === path);
  if (!panel) return null;
  const cells = [];
  for (const c of panel.content.model.cells) {
    if (c.type !== 'code') continue;
    const outputs = [];
    for (let i = 0; i < c.outputs.length; i++) {
      const o = c.outputs.get(i).toJSON();
      outputs.push({type: o.output_type, ename: o.ename, evalue: o.evalue, traceback: o.traceback, name: o.name,
                    text: Array.isArray(o.text) ? o.text.join('') : o.text, data: Object.keys(o.data || {})});
    }
    cells.push({count: c.executionCount, outputs: outputs});
  }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {cells: cells, status: kernel ? kernel.status : 'no kernel'};
}"""

# Records every progress bar widget that appears, with the last text of its row (tqdm's bars close
# when their loop ends: leave=False), so bars that came and went are still counted.
WATCH_PROGRESS_JS = """() => {
  const bars = [];
  window.__progress = [];
  const record = () => {
    document.querySelectorAll('.widget-hprogress').forEach(el => { if (!bars.includes(el)) bars.push(el); });
    bars.forEach((el, i) => {
      const row = el.closest('.widget-hbox');
      // innerText is '' for a cell JupyterLab does not render (off-screen, windowed notebook): textContent then
      const text = row ? (row.innerText.trim() || row.textContent).replace(/\\s+/g, ' ').trim() : '';
      if (text || window.__progress[i] === undefined) window.__progress[i] = text;
    });
  };
  new MutationObserver(record).observe(document.body, {childList: true, subtree: true, characterData: true});
  record();
}"""


def _shot(target, name: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(SHOTS / name))


def _errors(state) -> list[str]:
    return [f"cell {i} (code cell [{c['count']}]): {o['ename']}: {o['evalue']}\n"
            + re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(o["traceback"] or [])[-2000:])
            for i, c in enumerate(state["cells"]) for o in c["outputs"] if o["type"] == "error"]


def _open(page, lab, name: str):
    t0 = time.perf_counter()
    # a workspace of its own per notebook: JupyterLab would otherwise reopen the tabs of the previous page
    page.goto(f"{lab['url']}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={lab['token']}")
    # the kernel named in the notebook is started (status bar "Python 3 (ipykernel) | Idle") and the cells are there
    try:
        page.get_by_text(re.compile(r"\(ipykernel\) \| Idle")).wait_for(timeout=KERNEL_S * 1000)
        page.locator(".jp-CodeCell").first.wait_for(timeout=KERNEL_S * 1000)
    except Exception as e:
        _shot(page, f"{name[:2]}_failed_open.png")
        pytest.fail(f"{name}: JupyterLab did not show the notebook with an idle python3 kernel within {KERNEL_S}s "
                    f"({type(e).__name__}); screenshot in {SHOTS}; server log:\n{lab['log'].read_text()[-2000:]}")
    print(f"{name}: opened, kernel idle after {time.perf_counter() - t0:.1f}s")


def _run_all(page, lab, name: str, each=None):
    """Run > Run All Cells, then wait until every code cell ran (or one failed); returns the cells' state.
    ``each(page)`` is called at every look while waiting."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    t0, state = time.perf_counter(), None
    while time.perf_counter() - t0 < RUN_S:
        if each:
            each(page)
        state = page.evaluate(CELLS_JS, f"{name}.ipynb")
        assert state is not None, f"{name}: its notebook panel is gone"
        if _errors(state):
            _shot(page, f"{name[:2]}_failed_run.png")
            pytest.fail(f"{name} raised in JupyterLab (screenshot in {SHOTS}):\n" + "\n\n".join(_errors(state)))
        if state["status"] == "idle" and all(c["count"] for c in state["cells"]):
            print(f"{name}: {len(state['cells'])} code cells ran in {time.perf_counter() - t0:.1f}s")
            return state
        time.sleep(0.5)
    _shot(page, f"{name[:2]}_failed_timeout.png")
    counts = [c["count"] for c in state["cells"]] if state else None
    pytest.fail(f"{name}: Run All Cells did not finish within {RUN_S}s (kernel {state and state['status']}, "
                f"execution counts {counts}); screenshot in {SHOTS}")


# --------------------------------------------------------------------------- tests


def test_preprocessing_sample_browser(lab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, lab, "01_preprocessing")
    state = _run_all(page, lab, "01_preprocessing")
    _shot(page, "01_after_run_all.png")
    assert not _errors(state)

    # the sample browser: a VBox of (class, subject, sample), an info line and an Output with the figure
    view = page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-dropdown"))
    try:
        view.first.wait_for(timeout=WIDGET_S * 1000)
    except Exception:
        _shot(page, "01_failed_widgets.png")
        pytest.fail(f"01_preprocessing: the ipywidgets sample browser did not render (no dropdown in any output); "
                    f"screenshot in {SHOTS}")
    assert view.count() == 1, f"expected one sample browser, found {view.count()}"
    view = view.first
    n_widgets = view.locator(".jupyter-widgets").count()
    labels = [t.strip() for t in view.locator(".widget-label").all_inner_texts() if t.strip()]
    assert {"class", "subject", "sample"} <= set(labels), f"sample browser controls: {labels}"
    figure = view.locator(".widget-output img")
    figure.first.wait_for(timeout=WIDGET_S * 1000)
    info = view.locator(".widget-html-content")
    before = {"info": info.first.inner_text(), "img": figure.first.get_attribute("src")}
    assert "matching samples" in before["info"], f"sample browser says {before['info']!r}"
    view.scroll_into_view_if_needed()
    _shot(view, "01_sample_browser_before.png")

    # choose another class, as a person would (the <select> of the dropdown labelled "class")
    select = view.locator(".widget-dropdown").filter(has=page.locator("label", has_text=re.compile(r"^class$")))
    select = select.locator("select")
    options = select.locator("option").all_inner_texts()
    assert len(options) >= 2, f"the class dropdown offers {options}"
    first = select.evaluate("s => s.options[s.selectedIndex].text")
    other = options[-1] if options[-1] != first else options[0]
    select.select_option(label=other)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < WIDGET_S:
        figure = view.locator(".widget-output img")
        now = {"info": info.first.inner_text(), "img": figure.first.get_attribute("src") if figure.count() else None}
        if now["img"] and now["img"] != before["img"] and now["info"] != before["info"]:
            break
        time.sleep(0.25)
    else:
        _shot(view, "01_failed_sample_browser.png")
        pytest.fail(f"choosing class {other!r} (was {first!r}) did not change the sample browser within {WIDGET_S}s: "
                    f"info {before['info']!r} -> {now['info']!r}, figure changed: {now['img'] != before['img']}")
    _shot(view, "01_sample_browser_after.png")
    print(f"01_preprocessing: {n_widgets} widget elements; class {first!r} -> {other!r}: "
          f"{before['info']!r} -> {now['info']!r}")
    assert not _errors(page.evaluate(CELLS_JS, "01_preprocessing.ipynb")), "the redraw raised"
    page.close()


def test_transfer_progress_and_results(lab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, lab, "03_transfer")
    page.evaluate(WATCH_PROGRESS_JS)

    shots = []

    def screenshot_a_bar(page):                      # for a person to look at; the check is the observer's record
        bar = page.locator(".widget-hprogress")
        if not shots and bar.count():
            try:                                     # a bar closes when its training ends: best effort
                bar.first.scroll_into_view_if_needed(timeout=2000)
                _shot(page, "03_progress_bar.png")
                shots.append(True)
            except Exception:
                pass

    state = _run_all(page, lab, "03_transfer", each=screenshot_a_bar)
    bars = page.evaluate("() => window.__progress")
    print(f"03_transfer: progress bars seen: {bars}")
    # a bar per training, labelled with its modality by tqdm: the source (trained here, the temporary
    # out_dir has no checkpoint), the baseline, D-CAT and No MCMA (and one while the source's cache is built)
    assert len(bars) >= 4, f"expected a progress bar widget per training (at least 4), saw {bars}"
    # the source's bar is "video: ..."; a target's is "imu ..." or "video->imu (method): ..." (the baseline
    # runs as method "none" with L_CA monitored, so its bar is labelled like a transfer's)
    assert any(b.startswith("video:") for b in bars), bars
    assert any(re.match(r"(video->)?imu\b", b) for b in bars), bars
    assert all(re.search(r"\d+%", b) for b in bars), f"a progress bar without a percentage: {bars}"

    table = page.locator(".jp-OutputArea-output").filter(has_text="No MCMA").filter(has_text="imu baseline")
    table = table.filter(has_text=re.compile(r"\bf1\b"))
    try:
        table.first.wait_for(timeout=WIDGET_S * 1000)
    except Exception:
        _shot(page, "03_failed_results.png")
        pytest.fail(f"03_transfer: no results table (rows video source / imu baseline / D-CAT / No MCMA) was shown; "
                    f"screenshot in {SHOTS}")
    table.first.scroll_into_view_if_needed()             # JupyterLab renders only cells near the viewport
    text = table.first.text_content() or ""
    for run in ("video source", "imu baseline", "D-CAT", "No MCMA"):
        assert run in text, f"results table lacks {run!r}:\n{text}"
    _shot(page, "03_results.png")
    _check_alignment_explorer(page)
    results = list((lab["out"] / "03_transfer").glob("transfer-*.csv"))
    assert len(results) == 1, f"expected the results file in {lab['out']}, found {results}"
    assert not _errors(state)
    page.close()


def _wait_change(view, read_info, what: str, ref: dict, shot: str) -> dict:
    """Poll an explorer widget until both its info line (``read_info()``) and its figure differ
    from ``ref``; fail with a screenshot named ``shot`` after WIDGET_S seconds."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < WIDGET_S:
        img = view.locator(".widget-output img")
        now = {"info": read_info(), "img": img.first.get_attribute("src") if img.count() else None}
        if now["img"] and now["img"] != ref["img"] and now["info"] != ref["info"]:
            return now
        time.sleep(0.25)
    _shot(view, shot)
    pytest.fail(f"{what} did not change the explorer within {WIDGET_S}s: {ref['info']!r} -> "
                f"{now['info']!r}, figure changed: {now['img'] != ref['img']}")


def _check_alignment_explorer(page):
    """The explorer of 03: controls λ / MCMA / sample / steps, a 'train steps' button, an info line
    (L_CA, what MCMA drops) and a figure; the button and the checkbox change what it shows."""
    view = page.locator(".jp-OutputArea-output").filter(has=page.locator("button", has_text="train steps"))
    try:
        view.first.wait_for(timeout=WIDGET_S * 1000)
    except Exception:
        _shot(page, "03_failed_explorer.png")
        pytest.fail(f"03_transfer: the alignment explorer did not render (no 'train steps' button); screenshot in {SHOTS}")
    assert view.count() == 1, f"expected one alignment explorer, found {view.count()}"
    view = view.first
    view.scroll_into_view_if_needed()
    labels = [t.strip() for t in view.locator(".widget-label").all_inner_texts() if t.strip()]
    assert {"λ", "sample", "steps"} <= set(labels), f"alignment explorer controls: {labels}"
    info, figure = view.locator(".widget-html-content").first, view.locator(".widget-output img")
    figure.first.wait_for(timeout=WIDGET_S * 1000)
    before = {"info": info.inner_text(), "img": figure.first.get_attribute("src")}
    assert before["info"].startswith("L_CA = "), f"explorer says {before['info']!r}"
    _shot(view, "03_explorer_before.png")

    def wait_change(what: str, ref: dict) -> dict:
        return _wait_change(view, info.inner_text, what, ref, "03_failed_explorer_change.png")

    view.locator("button", has_text="train steps").click()
    trained = wait_change("pressing 'train steps'", before)
    _shot(view, "03_explorer_trained.png")
    view.locator("label", has_text="MCMA").locator("input[type=checkbox]").uncheck()
    unmasked = wait_change("unticking MCMA", trained)
    assert "drops 0 of" in unmasked["info"], f"without MCMA nothing is dropped: {unmasked['info']!r}"
    print(f"03_transfer explorer: {before['info']!r} -> train -> {trained['info']!r} -> no MCMA -> {unmasked['info']!r}")
    assert not _errors(page.evaluate(CELLS_JS, "03_transfer.ipynb")), "the explorer raised"


def test_results_explorer(lab, browser):
    """Notebook 06 on a fresh clone (run=False): the results explorer of dcatkit.explore renders from
    the committed CSV; choosing another study, then another size, changes its line and figure."""
    if not (REPO / "notebooks" / "results" / "06_runs.csv").exists():
        pytest.skip("no committed notebooks/results/06_runs.csv (written by `make notebooks`)")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, lab, "06_when_transfer_helps")
    state = _run_all(page, lab, "06_when_transfer_helps")
    assert not _errors(state)
    view = page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-dropdown"))
    try:
        view.first.wait_for(timeout=WIDGET_S * 1000)
    except Exception:
        _shot(page, "06_failed_explorer.png")
        pytest.fail(f"06: the results explorer did not render (no dropdown in any output); screenshot in {SHOTS}")
    assert view.count() == 1, f"expected one results explorer, found {view.count()}"
    view = view.first
    view.scroll_into_view_if_needed()
    labels = [t.strip() for t in view.locator(".widget-label").all_text_contents() if t.strip()]
    assert {"study", "method", "size"} <= set(labels), f"results explorer controls: {labels}"
    info, figure = view.locator(".widget-html-content").first, view.locator(".widget-output img")
    figure.first.wait_for(timeout=WIDGET_S * 1000)
    before = {"info": info.text_content(), "img": figure.first.get_attribute("src")}
    assert "baseline" in before["info"] and "per draw" in before["info"], before["info"]
    _shot(view, "06_explorer_before.png")

    def select(name: str, pick):
        sel = view.locator(".widget-dropdown").filter(has=page.locator("label", has_text=re.compile(f"^{name}$")))
        sel = sel.locator("select")
        options = sel.locator("option").all_text_contents()
        current = sel.evaluate("s => s.options[s.selectedIndex].text")
        choice = pick(options, current)
        sel.select_option(label=choice)
        return choice, options

    def wait_change(what: str, ref: dict) -> dict:
        return _wait_change(view, info.text_content, what, ref, "06_failed_explorer_change.png")

    study, studies = select("study", lambda opts, cur: next(o for o in opts if o != cur))
    assert len(studies) >= 3, f"the study dropdown offers {studies}"
    after = wait_change(f"choosing study {study!r}", before)
    norm = lambda t: t.replace("\xa0", " ")                # option labels may carry no-break spaces  # noqa: E731
    assert norm(after["info"]).startswith(norm(study)), f"explorer line {after['info']!r} is not about {study!r}"
    _shot(view, "06_explorer_study.png")
    # a study with several sizes (the main study: recordings; the curve: labels): change the size too
    multi = next((s for s in studies if s.startswith("(a)") or s.startswith("(d)")), None)
    if multi and multi != study:
        select("study", lambda opts, cur: multi)
        after = wait_change(f"choosing study {multi!r}", after)
    size, sizes = select("size", lambda opts, cur: next((o for o in opts if o != cur), cur))
    if len(sizes) > 1:
        resized = wait_change(f"choosing size {size!r}", after)
        assert norm(size) in norm(resized["info"]), f"explorer line {resized['info']!r} is not about {size!r}"
        _shot(view, "06_explorer_size.png")
    print(f"06 explorer: {before['info']!r} -> {study!r} -> size {size!r} of {sizes}")
    assert not _errors(page.evaluate(CELLS_JS, "06_when_transfer_helps.ipynb")), "the explorer raised"
    page.close()
