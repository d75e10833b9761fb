"""tests/benchmarks/proc_stats.py reads the right fields of /proc, checked against this process."""
from __future__ import annotations

import os
import time
from pathlib import Path

from tests.benchmarks.proc_stats import cpu_seconds, rss_kib


def test_rss_is_this_process_resident_memory():
    # statm's second field: resident pages, the same figure by another route.
    resident_kib = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    assert abs(rss_kib(os.getpid()) - resident_kib) < 1024


def test_cpu_seconds_count_user_and_system_time_of_the_process():
    before, times_before = cpu_seconds(os.getpid()), os.times()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    used, times_used = cpu_seconds(os.getpid()) - before, os.times()
    expected = (times_used.user + times_used.system) - (times_before.user + times_before.system)
    assert 0.2 < used and abs(used - expected) < 0.05
