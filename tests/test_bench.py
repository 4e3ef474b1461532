"""The benchmark script's quick mode runs for real, so it cannot rot (numbers: benchmarks/RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick(tmp_path):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--rounds", "1",
                        "--only", "loss", "epochs", "steps", "paper", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["loss"]["gram"]["seconds"] > 0 and res["loss"]["dense"]["seconds"] > 0
    ep = res["epochs"]
    assert {"unimodal", "live", "cached"} <= set(ep) and ep["cached_over_unimodal"] > 0
    assert res["paper"]["fp32"]["step_live_s"] > 0 and res["failed_cases"] == []
    assert res["paper"]["loop"]["cache_folders"] == 1 and "IMU step as fit runs it" in r.stdout
    assert res["steps"]["paper"]["shapes"]["d"] == 512 and res["steps"]["synthetic"]["ratios"]["median_of_pairs"] > 0
    assert len(ep["paired"]["ratios"]) == 2 and len(res["loss"]["gram"]["rounds_s"]) == 1
    assert "gram" in r.stdout and "cached / unimodal" in r.stdout


def _bench(name="bench_for_test"):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


FAKE_CASES = {   # what each paper case returns, at a tiny source (its FLOPs are counted for the summary)
    "case_source_paths": {"frames": 2, "size": 32, "depth": 18, "device": "NVIDIA H200", "old_frames_per_s": 9909.0,
                          "old_batch_clips": 8, "new_frames_per_s": 20342.0, "new_batch_clips": 34,
                          "cudnn_fused": True, "end_to_end_frames_per_s": 8165.0, "end_to_end_clips": 408},
    "case_loop_ratio": {"unimodal_step_s": 4e-3, "cached_step_s": 5e-3, "steps_per_epoch": 50, "amp": "torch.bfloat16",
                        "device": "NVIDIA H200", "shapes": {"B": 16, "T_s": 30, "d": 512},
                        "ratios": {"median_of_pairs": 1.25, "of_sums": 1.25, "q25": 1.2, "q75": 1.3, "pairs": 8}},
    "case_step_ratio": {"amp": "fp32", "device": "NVIDIA H200", "eager": {"unimodal": 4.7e-3, "cached": 6.5e-3,
                                                                          "ratio": 1.38},
                        "graphs": {"unimodal": 5e-4, "cached": 6e-4, "ratio": 1.2}},
    "case_paper": {"device": "NVIDIA H200", "amp": "fp32", "source_frames_per_s": 5900.0, "step_live_s": 0.042,
                   "step_cached_s": 0.0065, "live_over_cached": 6.5, "step_unimodal_s": 0.0041,
                   "cached_over_unimodal": 1.57},
}


@pytest.mark.parametrize("dies", ["case_source_paths", "case_step_ratio"])
def test_paper_section_goes_on_past_a_failed_case_and_prints_each_as_it_lands(tmp_path, monkeypatch, dies):
    """A GPU call has one try: a case that dies (the paper source refused by the float16 check
    killed the first one) is stored as "<case>_error" and every later case still runs, the JSON
    is written, the exit status says a case failed; each landed case's summary is printed before
    the next case starts, so a call cut short by its time limit keeps it in the log."""
    import contextlib
    import io

    bench = _bench()
    ran, printed_before = [], {}
    buf = io.StringIO()

    def fake_isolated(fn_name, **kwargs):
        ran.append(fn_name)
        printed_before.setdefault(fn_name, buf.getvalue())
        if fn_name == dies:
            raise RuntimeError(f"benchmark case {fn_name} died (exit code 1); its traceback is above")
        return json.loads(json.dumps(FAKE_CASES[fn_name]))

    monkeypatch.setattr(bench, "isolated", fake_isolated)
    out = tmp_path / "paper.json"
    with contextlib.redirect_stdout(buf):
        res = bench.main(["--only", "paper", "--quick", "--json", str(out)])
    assert ran == ["case_source_paths", "case_loop_ratio", "case_step_ratio", "case_step_ratio", "case_paper",
                   "case_paper"]
    saved = json.loads(out.read_text())
    paper = saved["paper"]
    if dies == "case_source_paths":
        assert "source" not in paper and "died" in paper["source_error"]
        assert paper["loop"]["cached_step_s"] == 5e-3 and paper["steps"]["amp"]["eager"]["ratio"] == 1.38
    else:
        assert "died" in paper["steps"]["fp32_error"] and "died" in paper["steps"]["amp_error"]
        assert paper["source"]["new_frames_per_s"] == 20342.0 and paper["source"]["flops_per_frame"] > 0
    assert paper["fp32"]["step_live_s"] == 0.042 and res["failed_cases"] == saved["failed_cases"] != []
    text = buf.getvalue()
    assert f"paper case {dies}" in text and "failed" in text
    assert "IMU step as fit runs it" in printed_before["case_step_ratio"]        # printed as it landed
    if dies == "case_source_paths":
        assert "fit does not capture graphs" in printed_before["case_paper"]
    else:
        assert "NEW compute" in printed_before["case_loop_ratio"]
    assert text.count("IMU step as fit runs it") == 1                             # once, not again at the end
    assert not (tmp_path / "paper.json.part").exists()


def test_suite_file_seconds_sums_each_files_testcases(tmp_path):
    """What gpu_check.sh deals the suite's files by: the summed testcase times per file, whether
    the test is a function (classname tests.test_a) or a method (tests.test_b.TestX); a classname
    that names no test file is refused."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sfs", ROOT / "benchmarks" / "suite_file_seconds.py")
    sfs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sfs)
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite name="pytest">'
                   '<testcase classname="tests.test_a" name="t1" time="1.5"/>'
                   '<testcase classname="tests.test_a" name="t2" time="2.25"/>'
                   '<testcase classname="tests.test_b.TestX" name="t3" time="4.0"/>'
                   '<testcase classname="tests.test_c" name="t4"/>'
                   '</testsuite></testsuites>')
    assert sfs.file_seconds(str(xml)) == {"test_a.py": 3.75, "test_b.py": 4.0, "test_c.py": 0.0}
    xml.write_text('<testsuite><testcase classname="conftest" name="x" time="1"/></testsuite>')
    with pytest.raises(ValueError, match="expected tests.test_<file>"):
        sfs.file_seconds(str(xml))


def test_fraction_of_peak_is_taken_from_the_card_that_ran():
    """The source's fraction of peak divides by the bf16 dense figure of the card named by
    torch.cuda.get_device_name(): an H100 PCIe has a lower one than an H100 SXM or an H200, and
    a card not listed gets no fraction (not another card's)."""
    bench = _bench("bench_peak")
    assert bench.bf16_dense_peak("NVIDIA H200") == (989e12, "H200")
    assert bench.bf16_dense_peak("NVIDIA H100 80GB HBM3") == (989e12, "H100 SXM")
    assert bench.bf16_dense_peak("NVIDIA H100 PCIe") == (756e12, "H100 PCIe")
    assert bench.bf16_dense_peak("NVIDIA A100-SXM4-80GB") is None
    assert bench.bf16_dense_peak("x86_64") is None
    # an NVL card (other clocks and power limits) is not an SXM card, and a GH200 is not an H200:
    # a name that merely contains a listed one gets no fraction
    for name in ("NVIDIA H200 NVL", "NVIDIA H100 NVL", "NVIDIA GH200 480GB"):
        assert bench.bf16_dense_peak(name) is None, name


def test_bench_source_at_paper_input_is_cached_without_the_float16_refusal(tmp_path):
    """bench's frozen source at the paper's input (ResNet-101, 224^2) goes through run_source, as
    case_source_paths' end-to-end part does: with random init and BatchNorm's default statistics,
    K reached 9.97e4 on one clip of 2 random frames, beyond float16's 65504, and run_source refused
    to cache it, so the GPU bench died at its first case. The smallest input that showed it: one
    clip of 2 frames, on the CPU."""
    import numpy as np

    from dcatkit.data.dataset import PairedDataset
    from dcatkit.source_cache import run_source

    bench = _bench("bench_source")
    src = bench.paper_source(frames=30, size=224, depth=101, device="cpu")
    clip = np.random.default_rng(0).integers(0, 256, (1, 2, 3, 224, 224), dtype=np.uint8)
    ds = PairedDataset({"video": clip}, [0], [str(i) for i in range(8)])
    run_source(src, ds, "video", tmp_path / "cache", ("k", "v"), device="cpu", progress=False)
    k = np.load(tmp_path / "cache" / "k.npy")
    assert k.shape == (1, 2, 512) and np.isfinite(k).all()
    assert not src.training and not any(p.requires_grad for p in src.parameters())     # frozen, eval mode


def test_step_ratio_as_fit_runs_it_reads_the_source_cache_every_step(monkeypatch):
    """Goal 3 is read on the step training runs: fit_transfer's, which reads its batch's K, V and
    MCMA bits from the SourceCache every step (memory-mapped rows gathered, copied to the device).
    case_step_ratio keeps K, V on the device and never reads a cache; case_loop_ratio must, once
    per transfer step, from one cache built once, at the paper's K, V shape."""
    from dcatkit import frozen_source

    bench = _bench("bench_loop")
    calls, read = [], frozen_source.SourceCache.__call__

    def counted(self, batch, device):
        calls.append(len(batch["id"]))
        return read(self, batch, device)

    monkeypatch.setattr(frozen_source.SourceCache, "__call__", counted)
    r = bench.case_loop_ratio(n_train=32, pairs=2, warmup=0, frame_size=16)
    assert r["steps_per_epoch"] == 2 and calls == [16] * 4            # 2 transfer epochs x 2 steps of 16
    assert r["cache_folders"] == 1 and r["shapes"] == {"B": 16, "T_s": 30, "d": 512}
    assert len(r["unimodal_s"]) == len(r["cached_s"]) == 2 and r["cached_step_s"] > 0


def test_notebook_06_controls_share_the_gpu_like_its_main_study(monkeypatch, tmp_path):
    """On a GPU, notebook 06's controls and curve (510 of the default grid's 810 target runs) ran
    on one worker: run_controls called run_grid without a run memory estimate, and
    default_workers(None) is one per GPU, while run_studies (its main study) passes one. With
    CUDA (mocked: an H200's free memory, 16 cores) both of run_controls' grids get an estimate,
    the sources' of the video source at the synthetic preset's batch, as sweep estimates its own,
    and several workers share the GPU."""
    import pandas as pd
    import torch

    from dcatkit import runner, studies, sweep
    from dcatkit.presets import get_preset

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (139 * 2**30, 141 * 2**30))
    monkeypatch.setattr(runner, "_cpu_cores", lambda: 16)
    grids = []

    def fake_run_grid(task, params, out, **kw):
        grids.append((task.func.__name__, kw.get("run_bytes"), kw.get("workers")))
        return pd.DataFrame()

    monkeypatch.setattr(sweep, "run_grid", fake_run_grid)
    controls = [{"study": "(b) negative control", "kind": "negative", "methods": ["none", "dcat"]},
                {"study": "(c) positive control", "kind": "positive", "methods": ["none", "dcat"], "labels": [10]}]
    studies.run_controls(tmp_path, controls, seeds=[0, 1], draws=[0], n_samples=96)
    (src_task, src_bytes, w1), (tgt_task, tgt_bytes, w2) = grids
    assert (src_task, tgt_task, w1, w2) == ("study_source_task", "study_task", None, None)
    sp = studies.study_splits(0, 96, "video", "imu", "negative")
    assert src_bytes == runner.estimate_run_bytes(get_preset("synthetic", "video").batch_size,
                                                  [sp.train.input_shape("video")])   # the largest source: video
    assert tgt_bytes == runner.estimate_run_bytes(get_preset("synthetic", "imu").batch_size,
                                                  [sp.train.input_shape("imu")])
    assert runner.default_workers(src_bytes) > 1 and runner.default_workers(tgt_bytes) > 1


def test_notebook_06_says_how_many_workers_it_ran_on_the_machine_it_ran_on():
    """Notebook 06 prints the workers its grids ran on. With workers=None it said "one worker per
    core" on a GPU too, where default_workers chooses per GPU from the runs' memory; on the CPU it
    must still print what the committed execution printed."""
    import ast
    import types

    src = (ROOT / "notebooks" / "06_when_transfer_helps.py").read_text()
    exprs = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.IfExp)
             and "one worker per core" in ast.unparse(n) and "in this process" in ast.unparse(n)]
    assert len(exprs) == 1, "the cell that prints this execution's workers was not found"
    code = compile(ast.Expression(exprs[0]), "06_when_transfer_helps.py", "eval")

    def said(cuda: bool, workers=None) -> str:
        torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: cuda))
        return eval(code, {"workers": workers, "torch": torch})

    assert said(cuda=False) == "with one worker per core"             # the committed CPU run's words
    assert "per core" not in said(cuda=True) and "GPU" in said(cuda=True)
    assert said(cuda=True, workers=3) == said(cuda=False, workers=3) == "with 3 workers"
    assert said(cuda=False, workers=1) == "with 1 worker"               # no "worker(s)"
    assert said(cuda=False, workers=0) == "in this process"             # runner: workers=0 runs in this process
    committed = (ROOT / "notebooks" / "06_when_transfer_helps.ipynb").read_text()
    assert "min with one worker per core (runs finished earlier" in committed


def _run_script(script, env, timeout=120):
    """benchmarks/<script> with ``env`` over this environment, less the settings the scripts read."""
    import os
    import subprocess
    mine = {k: v for k, v in os.environ.items() if not k.startswith(("T_", "GPU_CHECK", "GPU_SESSION", "SESSION"))}
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / script)], env={**mine, **env}, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


def test_gpu_session_pack_brings_back_notebook_06_results(tmp_path):
    """What a GPU call brings back: the session folder packed into one archive. Notebook 06's
    results lie under nb06/outputs (06_runs.csv, pooled.*, one runs/*.json per run): a pack that
    left out every 'outputs' folder lost them, also those of a part cut by its limit, which the
    script promises to bring back. Checkpoints, caches (the preprocessed frames of notebook 03 at
    paper scale, .bin, are hundreds of MB) and the e2e fixture stay behind."""
    import tarfile

    w, nb = tmp_path / "w", "nb06/outputs/06_when_transfer_helps"
    kept = ["summary.txt", "bench.log", "bench_paper.json", "nb06/06_when_transfer_helps.log", f"{nb}/06_runs.csv",
            f"{nb}/pooled.csv", f"{nb}/pooled.json", f"{nb}/sweep/runs/a1.json", f"{nb}/controls/runs/b2.json",
            f"{nb}/sweep/sources/trained.log", "e2e/paper_e2e.json", "e2e/03_transfer.log"]
    dropped = [f"{nb}/sweep/sources/video_ab.pt", f"{nb}/sweep/cache/0f1e/k.npy", "e2e/uestc/video/x/000001.jpg",
               "e2e/uestc/sensor/1_upstairs/x.csv", "e2e/prep/uestc-6fcb/video.bin", "pytest_tmp_0/t/f.txt",
               "dcatkit_cache/z/meta.json"]
    for f in kept + dropped:
        (w / f).parent.mkdir(parents=True, exist_ok=True)
        (w / f).write_text("x")
    _run_script("gpu_session.sh", {"SESSION": "pack", "OUT": str(tmp_path / "out"), "GPU_SESSION_DIR": str(w)})
    with tarfile.open(tmp_path / "out" / "gpu_session.tgz") as t:
        names = {n[2:] if n.startswith("./") else n for n in t.getnames()}
    assert set(kept) <= names, sorted(set(kept) - names)
    assert not set(dropped) & names, sorted(set(dropped) & names)
    assert (tmp_path / "out" / "summary.txt").is_file()


def test_gpu_session_pack_keeps_an_archive_tar_completed_around_a_changing_file(tmp_path):
    """GNU tar exits 1 when a file changed while it was read (SESSION=controls packs while the
    controls still write beside it): the archive is complete otherwise, and the pack threw it
    away (``tar ... && mv``), so the call brought back an older archive or none. A stand-in tar
    runs the real one and exits 1; one that exits 2 (a real error) leaves the last archive."""
    import os
    import shutil
    import tarfile

    w, out, bin_ = tmp_path / "w", tmp_path / "out", tmp_path / "bin"
    (w / "nb06").mkdir(parents=True)
    (w / "nb06" / "06_runs.csv").write_text("x")
    (w / "summary.txt").write_text("s")
    bin_.mkdir()
    env = {"SESSION": "pack", "OUT": str(out), "GPU_SESSION_DIR": str(w),
           "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    for rc in (1, 2):
        (bin_ / "tar").write_text(f'#!/bin/sh\n{shutil.which("tar")} "$@"\nexit {rc}\n')
        (bin_ / "tar").chmod(0o755)
        (w / f"after_rc{rc}.txt").write_text("x")
        _run_script("gpu_session.sh", env)
        with tarfile.open(out / "gpu_session.tgz") as t:
            names = {n[2:] if n.startswith("./") else n for n in t.getnames()}
        assert "nb06/06_runs.csv" in names and "after_rc1.txt" in names
        assert "after_rc2.txt" not in names          # exit 2: the archive of the call before stays


def test_gpu_check_adds_bench_lines_to_the_summary_once(tmp_path):
    """gpu_session.sh runs gpu_check.sh once per step with one OUT: each call appended bench.log's
    figures to summary.txt, so the steps after bench appended them again. Only the call that ran
    bench appends them (its PY a stand-in that prints one figure line)."""
    out, py = tmp_path / "out", tmp_path / "py.sh"
    out.mkdir()
    (out / "env.txt").write_text("recorded by an earlier step\n")       # written once per OUT
    py.write_text("#!/bin/sh\necho 'NEW compute: 20,342 frames/s'\n")
    py.chmod(0o755)
    env = {"OUT": str(out), "PY": str(py), "GPU_CHECK_DRY": "1"}
    _run_script("gpu_check.sh", {**env, "GPU_CHECK_PARTS": "bench"})
    _run_script("gpu_check.sh", {**env, "GPU_CHECK_PARTS": "nb06"})
    summary = (out / "summary.txt").read_text()
    assert summary.count("20,342 frames/s") == 1, summary
    assert (out / "env.txt").read_text() == "recorded by an earlier step\n"


# The worst case of one step of gpu_check.sh beyond its parts' limits: the suite's pytest gets SIGINT at
# T_SUITE and SIGKILL 20 s later, other parts SIGTERM then SIGKILL 10 s later; the machine's record
# (env.txt, once per session: an estimate) and a pack after each step.
ENV_S, PACK_S, SUITE_GRACE_S, PART_GRACE_S, CALL_S = 15, 5, 20, 10, 600


def test_gpu_session_plan_fits_one_call_most_needed_first(tmp_path):
    """The default plan is one device call of at most 600 s: the suite (with notebook 03 at paper
    scale beside it, under a limit no longer than the suite's, so it adds no time), then bench,
    then notebook 06, each under its limit; their worst case, kill grace, the machine's record
    and the packs included, fits the call, so the last pack (notebook 06's results) happens."""
    stub, w = tmp_path / "check.sh", tmp_path / "w"
    stub.write_text('#!/bin/sh\necho "$GPU_CHECK_PARTS|${T_SUITE:-}|${T_E2E:-}|${T_BENCH:-}|${T_NB06:-}" '
                    '>> "$OUT/calls.txt"\n')
    _run_script("gpu_session.sh", {"OUT": str(tmp_path / "out"), "GPU_SESSION_DIR": str(w), "GPU_CHECK": str(stub)})
    calls = [line.split("|") for line in (w / "calls.txt").read_text().splitlines()]
    assert [c[0] for c in calls] == ["suite e2e", "bench", "nb06"]
    t_suite, t_e2e, t_bench, t_nb06 = int(calls[0][1]), int(calls[0][2]), int(calls[1][3]), int(calls[2][4])
    assert t_e2e <= t_suite
    worst = ENV_S + (t_suite + SUITE_GRACE_S) + (t_bench + PART_GRACE_S) + (t_nb06 + PART_GRACE_S) + 3 * PACK_S
    assert worst <= CALL_S, f"the plan's worst case is {worst} s, more than one call's {CALL_S} s"
    # each part keeps room to finish: notebook 06's goal is 120 s, bench took 99 s on 2026-12-04 (fewer
    # cases), the suite's longest process ~150 s of CPU time (test_cli.py alone, 2026-12-07, nothing beside it;
    # benchmarks/suite_file_seconds.json, measured beside other test runs, holds 182 s)
    assert t_nb06 >= 130 and t_bench >= 150 and t_suite >= 180
