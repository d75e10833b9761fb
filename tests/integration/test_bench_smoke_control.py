"""The control-plane benchmarks still run end to end on small sizes and print
their figures (the values are not checked: timings vary with the machine, so
they are never a pass/fail criterion)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from agent.kernel import netns
from tests.benchmarks import bench_propagation, bench_scale, bench_snapshot, figures, run_all

NUMBER = r"[\d,]+(\.\d+)?"


def _own_processes() -> set[str]:
    """Benchmark processes left running (controllers on a vxbench-* socket, simulated agents),
    of this checkout's interpreter: other checkouts on the machine may be running theirs."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if line.startswith(f"{sys.executable} ")
            and ("tests.benchmarks.sim_agents" in line or ("cli.main" in line and "vxbench-" in line))}


@pytest.fixture(autouse=True)
def _leaves_nothing_behind():
    before = _own_processes()
    figures.RECORDED.clear()
    yield
    assert _own_processes() <= before


def test_propagation_prints_percentiles_with_targets_and_baselines(capsys):
    assert bench_propagation.main(["--agents", "3", "--endpoints", "12", "--rate", "20"]) == 0
    out = capsys.readouterr().out
    for name in ("p50 API return -> all agents", "p99 API return -> all agents",
                 "p50 etcd commit seen -> all agents", "p99 etcd commit seen -> all agents"):
        assert re.search(rf"{re.escape(name)}: {NUMBER} ms  target <= [\d.]+ ms  (met|NOT met)  "
                         rf"baseline etcd put->watch {NUMBER} ms \(x", out), out
    assert re.search(r"\d+ of 12 endpoints \(\d+%\) had reached all 3 agents", out), out
    assert {f.bench for f in figures.RECORDED} == {"propagation"}


def test_scale_prints_the_growth_table_the_storm_and_memory(capsys):
    assert bench_scale.main(["--steps", "10,20", "--updates", "5", "--agent-endpoints", "40",
                             "--processes", "2"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(rf"^\s+(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}/{NUMBER}\s+{NUMBER}$",
                      out, re.MULTILINE)
    assert [r[0] for r in rows] == ["10", "20"], out
    for name in ("p50 etcd commit -> the 10 interested agents, 20 agents",
                 "p99 etcd commit -> the 10 interested agents, 20 agents"):
        assert re.search(rf"{re.escape(name)}: {NUMBER} ms  target <= [\d.]+ ms  (met|NOT met)  "
                         rf"baseline 10 agents {NUMBER} ms", out), out
    assert re.search(rf"CPU per update, 20 agents / 10 agents \(10 interested\): ({NUMBER}|inf) x  target <= 2.00 x", out), out
    assert re.search(rf"reconnect storm, all 20 agents to their snapshots: {NUMBER} s  target <= 10.00 s", out), out
    assert re.search(rf"controller RSS, 20 agents, 200 endpoints on 20 networks: {NUMBER} MB  target <= 500 MB", out), out
    assert re.search(rf"agent RSS .* with 40 table entries: {NUMBER} MB  target <= 100 MB", out), out
    assert re.search(rf"harness CPU over the whole run: simulated agents {NUMBER} s \(2 processes", out), out


@pytest.mark.integration
def test_snapshot_prints_receive_and_program_times_and_removes_its_namespace(capsys):
    before = set(netns.list_netns("vxbench"))
    assert bench_snapshot.main(["--endpoints", "60"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"fresh connect -> 61 rows decoded: {NUMBER} s  target <= 1.00 s", out), out
    assert re.search(rf"first container run -> whole table decoded: {NUMBER} s", out), out
    assert re.search(rf"program 60 FDB \+ 60 neighbour entries: {NUMBER} s  target <= 1.00 s  (met|NOT met)  "
                     rf"baseline bridge/ip -batch", out), out
    assert set(netns.list_netns("vxbench")) <= before  # its namespace is gone (others may go too)


def test_runner_skips_absent_modules_and_summarizes(monkeypatch, capsys):
    monkeypatch.setattr(run_all, "MODULES", run_all.MODULES + ("bench_not_written_yet",))
    full_size = bench_propagation.main  # the runner runs default sizes: make them small here
    monkeypatch.setattr(bench_propagation, "main",
                        lambda argv: full_size(["--agents", "2", "--endpoints", "4", "--rate", "20"]))
    assert run_all.main(["--only", "bench_propagation,bench_not_written_yet"]) == 0
    out = capsys.readouterr().out
    assert "skipped: tests/benchmarks/bench_not_written_yet.py is not there" in out
    assert "=== summary" in out and "[bench_propagation] ran" in out
    assert re.search(r"p50 API return -> all agents\s+[\d.,]+ ms\s+<= 20.00 ms\s+(yes|NO)\s+etcd put->watch", out), out

