"""The benchmark script's quick mode runs for real, so it cannot rot (numbers: benchmarks/RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

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
