"""Seconds per test file, from a pytest junit XML: how gpu_check.sh deals the suite's files over
its processes (largest first onto the least loaded), so no process runs far past the others.

    PYTHONPATH=. python -m pytest -p no:cacheprovider --junitxml=/tmp/suite.xml   # packages as on the GPU machine
    python benchmarks/suite_file_seconds.py /tmp/suite.xml "how it was measured"   # -> suite_file_seconds.json

The times are the CPU run's; on the GPU only their proportions matter.
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def file_seconds(junit_xml: str) -> dict[str, float]:
    """Summed test time per test file (``tests/test_x.py`` -> ``test_x.py``); setup and teardown
    are inside each testcase's time."""
    out: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        module = (case.get("classname") or "").split(".")
        name = next((m for m in module if m.startswith("test_")), None)
        if name is None:
            raise ValueError(f"{junit_xml}: testcase {case.get('name')!r} has classname "
                             f"{case.get('classname')!r}, expected tests.test_<file>[.Class]")
        out[f"{name}.py"] += float(case.get("time") or 0.0)
    return dict(sorted(out.items()))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    seconds = file_seconds(sys.argv[1])
    path = Path(__file__).with_name("suite_file_seconds.json")
    path.write_text(json.dumps({"measured": sys.argv[2], "seconds": {k: round(v, 1) for k, v in seconds.items()}},
                               indent=1) + "\n")
    print(f"{len(seconds)} files, {sum(seconds.values()):.0f} s in all -> {path}")
