"""scripts/bench_heap.py times the engine's step in fresh processes that take turns, with glibc's default heap and
with the engine's (bert.engine.heap), and prints per arm the step time, tokens/s, page faults, kernel time and peak
RSS with their ranges, and the ratio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from test_pretrain_loop import data  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parent.parent
ARM = re.compile(r"^\s*(default|kept): ms_per_step ([\d,.]+) \(([\d,.]+)–([\d,.]+)\), tokens_per_s ([\d,.]+) .*"
                 r"faults_per_step ([\d,.]+) .*peak_rss_gb ([\d.]+)", re.MULTILINE)


def test_each_arm_prints_its_step_time_faults_and_peak_rss_and_the_ratio(data: Path) -> None:  # noqa: F811
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_heap.py"), "--data", str(data), "--threads",
                          "1", "--rounds", "1", "--steps", "2"],
                         capture_output=True, text=True, check=True).stdout
    assert "CPU flags: " in out and "1 rounds of 2 steps" in out
    arms = {m[0]: [float(x.replace(",", "")) for x in m[1:]] for m in ARM.findall(out)}
    assert list(arms) == ["default", "kept"]
    for ms, low, high, tokens, faults, rss in arms.values():
        assert 0 < low <= ms <= high and tokens > 0 and faults >= 0 and 0 < rss < 10
    ratio = float(re.search(r"kept / default tokens/s: ([\d.]+)", out)[1])
    assert abs(ratio - arms["kept"][3] / arms["default"][3]) < 1e-3
