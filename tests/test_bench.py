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
    assert res["paper"]["fp32"]["step_live_s"] > 0
    assert res["steps"]["paper"]["shapes"]["d"] == 512 and res["steps"]["synthetic"]["ratios"]["median_of_pairs"] > 0
    assert len(ep["paired"]["ratios"]) == 2 and len(res["loss"]["gram"]["rounds_s"]) == 1
    assert "gram" in r.stdout and "cached / unimodal" in r.stdout


def test_paper_section_keeps_each_case_as_it_lands(tmp_path, monkeypatch):
    """A GPU call cut short (its time limit) must keep what finished: the source's frames/s is
    written to the JSON before the step ratio runs, in the order of issue 18's goals."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_for_test", ROOT / "benchmarks" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ran = []

    def fake_isolated(fn_name, **kwargs):
        ran.append(fn_name)
        if fn_name == "case_step_ratio":
            raise RuntimeError("the call's time limit")
        return {"new_frames_per_s": 123.0}

    monkeypatch.setattr(bench, "isolated", fake_isolated)
    out = tmp_path / "paper.json"
    with pytest.raises(RuntimeError, match="time limit"):
        bench.main(["--only", "paper", "--quick", "--json", str(out)])
    assert ran == ["case_source_paths", "case_step_ratio"]
    assert json.loads(out.read_text())["paper"]["source"] == {"new_frames_per_s": 123.0}
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
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_peak", ROOT / "benchmarks" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.bf16_dense_peak("NVIDIA H200") == (989e12, "H200")
    assert bench.bf16_dense_peak("NVIDIA H100 80GB HBM3") == (989e12, "H100 SXM")
    assert bench.bf16_dense_peak("NVIDIA H100 PCIe") == (756e12, "H100 PCIe")
    assert bench.bf16_dense_peak("NVIDIA A100-SXM4-80GB") is None
    assert bench.bf16_dense_peak("x86_64") is None
