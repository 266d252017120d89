"""The engine keeps freed memory for the next step (bert.engine.heap): a tensor freed and allocated again reuses
pages the process has already touched, instead of the kernel faulting in fresh zero-filled ones."""

import platform
import subprocess
import sys

import pytest

# Runs a "step" that allocates and frees a 48 MB tensor (above glibc's largest mmap threshold) and two of 12 MB ten
# times and prints the minor page faults of the last four steps and the peak RSS; with "keep", after the engine's
# process setup (set_threads). The first steps find the heap's steady state (PyTorch's aligned allocations do not
# always fit the block the last step freed).
SCRIPT = """
import resource, sys, torch
from bert.engine.distributed import World, set_threads
if sys.argv[1] == "keep":
    set_threads(World(), 1)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():
    large, small = torch.ones(12_000_000), torch.ones(3_000_000)
    return (large[:3_000_000] + small).sum()
for _ in range(6):
    step()
start = faults()
for _ in range(4):
    step()
print((faults() - start) // 4, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def faults_and_peak_rss(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True).stdout
    faults, rss_mb = map(int, out.split())
    return faults, rss_mb


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the setting is glibc's; elsewhere keep_freed_memory() returns False and does nothing")
def test_engine_setup_reuses_freed_pages_instead_of_faulting_in_new_ones_at_the_same_peak_rss():
    default_faults, default_rss = faults_and_peak_rss("default")
    kept_faults, kept_rss = faults_and_peak_rss("keep")
    assert default_faults > 10_000  # 48 MB in 4 KB pages, faulted in again every time
    assert kept_faults < 500
    assert kept_rss < default_rss + 60  # only the touched pages are resident: at most one more tensor's worth
