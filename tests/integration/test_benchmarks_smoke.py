"""The benchmarks still run end to end (their figures are not checked:
timings vary with the machine, so they are never a pass/fail criterion)."""
from __future__ import annotations

import re

import pytest

from agent.kernel import netns
from tests.benchmarks import bench_kernel

pytestmark = pytest.mark.integration


def test_bench_kernel_prints_a_rate_for_every_method(capsys):
    before = set(netns.list_netns("vxbench"))
    assert bench_kernel.main(["--entries", "200", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    for label in ("bridge -batch + ip -batch", "vxmesh table.program",
                  "pyroute2 (previous program)"):
        assert re.search(rf"{re.escape(label)}\s+[\d.]+ s\s+[\d,]+ entries/s", out), out
    assert re.search(r"vxmesh/baseline ratio \d+\.\d\d", out), out
    assert set(netns.list_netns("vxbench")) <= before  # its namespace is gone (others may go too)
