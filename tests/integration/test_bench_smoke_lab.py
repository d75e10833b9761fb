"""The lab benchmarks still run end to end on tiny sizes.

Their figures are never checked against targets here (timings depend on the
machine and its load); what is checked is that each benchmark prints every
figure it promises and leaves no namespace of its lab behind.
"""
from __future__ import annotations

import os
import re

import pytest

from agent.kernel import netns
from tests.benchmarks import (bench_agent_memory, bench_attach, bench_dataplane, bench_engines, bench_lab_propagation,
                               bench_services)
from tests.helpers.engines import root_namespace_state

pytestmark = pytest.mark.integration

# A phase between two processes' stamps may come out slightly negative: an
# agent can apply a change before the controller's coroutine resumes to stamp its commit.
MS = r"-?[\d.]+ ms"
FIGURE = r"-?[\d,.]+"  # figures.fmt
VERDICT = r"(met|NOT met)"


@pytest.fixture(autouse=True)
def _root_and_no_leftovers():
    if os.geteuid() != 0:
        pytest.skip("the benchmarks build labs: they need root")
    before = set(netns.list_netns("vxbench"))
    yield
    assert set(netns.list_netns("vxbench")) <= before, "a benchmark left a namespace behind"


def test_bench_attach_prints_totals_against_docker_phases_and_baselines(capsys):
    root = root_namespace_state()
    assert bench_attach.main(["--containers", "2", "--baseline-runs", "1"]) == 0
    assert root_namespace_state() == root   # dockerd and podman left the root namespace alone
    out = capsys.readouterr().out
    for q in (50, 99):
        assert re.search(rf"attach p{q}: {FIGURE} ms  target <= {FIGURE} ms  {VERDICT}  "
                         rf"baseline docker run -d --network none p{q} {FIGURE} ms \(x[\d.]+\)", out), out
        assert re.search(rf"attach p{q}, podman beside it: {FIGURE} ms  "
                         rf"baseline podman run -d --network none p{q} {FIGURE} ms", out), out
    for label, limit in (("vxmesh --version", 100), ("vxmesh ps", 150)):
        assert re.search(rf"{re.escape(label)} wall time p50: {FIGURE} ms  target <= {limit} ms  {VERDICT}  "
                         rf"baseline python -c pass p50 {FIGURE} ms", out), (label, out)
    for label, _, _ in bench_attach.PHASES:
        assert re.search(rf"{re.escape(label)} +{MS} +max +{MS}", out), (label, out)
    assert re.search(rf"table fan-out: commit -> h2 kernel: p50 +{MS}", out), out
    assert re.search(rf"h2 kernel has the endpoint .* p50 +{MS}", out), out
    for label in ("vxmesh host ls", "ping -c 1 to a reachable container", "ip netns + veth + ping",
                  "docker run -d --network none", "podman run -d --network none"):
        assert re.search(rf"{re.escape(label)}.* p50 +{MS}", out), (label, out)
    assert re.search(r"attach p50 / docker p50 \d+\.\d\d", out), out


def test_bench_agent_memory_prints_the_agents_rss_beside_its_idle_rss(capsys):
    assert bench_agent_memory.main(["--containers", "2", "--endpoints", "200"]) == 0
    out = capsys.readouterr().out
    for label in ("RSS idle", "RSS with the table and 1 container", "RSS with the table and   2 containers"):
        assert re.search(rf"{re.escape(label)}.* [\d.]+ MB", out), (label, out)
    assert re.search(rf"agent RSS, 2 containers, 200-entry table: {FIGURE} MB  target <= 80.00 MB  {VERDICT}  "
                     rf"baseline same agent idle {FIGURE} MB", out), out


def test_bench_dataplane_prints_throughput_rtt_mtu_and_offloads(capsys):
    assert bench_dataplane.main(["--seconds", "1", "--rounds", "1", "--pings", "20"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"container eth0 1450 \(= underlay - 50\)", out), out
    for path in ("underlay", "overlay", "overlay, port security off"):
        assert re.search(rf"{path} +[\d.]+ Gbit/s", out), (path, out)
        assert re.search(rf"{path} +median +[\d.]+ +avg", out), (path, out)
    assert re.search(rf"overlay TCP throughput, port security on: {FIGURE} Gbit/s  "
                     rf"baseline port security off {FIGURE} Gbit/s \(x[\d.]+\)", out), out
    assert re.search(rf"overlay ping RTT median, port security on: {FIGURE} us  "
                     rf"baseline port security off {FIGURE} us \(x[\d.]+\)", out), out
    assert re.search(rf"overlay TCP throughput: {FIGURE} Gbit/s  target >= {FIGURE} Gbit/s  {VERDICT}  "
                     rf"baseline underlay {FIGURE} Gbit/s", out), out
    assert re.search(rf"ping RTT overhead, overlay - underlay medians: {FIGURE} us  target <= 40.00 us  "
                     rf"{VERDICT}  baseline underlay RTT median {FIGURE} us", out), out
    assert re.search(rf"ping RTT overhead at 1 ms spacing, overlay - underlay medians: -?{FIGURE} us  "
                     rf"baseline underlay RTT median at 1 ms {FIGURE} us", out), out
    for hop in ("VXLAN encapsulation", "a bridge", "a veth pair", "the rest of the overlay path"):
        for spacing in ("", " at 1 ms spacing"):
            assert re.search(rf"RTT cost of {hop}[^:]*{spacing}: -?{FIGURE} us  baseline underlay RTT median", out), \
                (hop, spacing, out)
    for step in ("+ vxlan", "+ bridge", "+ veth"):
        assert re.search(rf"^    {re.escape(step)} +[\d.]+ +[+-][\d.]+  ", out, re.MULTILINE), (step, out)
    assert re.search(r"container eth0 +tx-checksum-ip-generic (on|off)", out), out
    assert re.search(r"vxlan vx\d+ +.*tx-udp_tnl-segmentation (on|off)", out), out


def test_bench_lab_propagation_prints_percentiles_and_the_poll_floor(capsys):
    assert bench_lab_propagation.main(["--endpoints", "3", "--baseline-runs", "2"]) == 0
    out = capsys.readouterr().out
    for start in ("from the call's return", "from the etcd commit"):
        for q, limit in ((50, "20.00"), (99, "100")):
            assert re.search(rf"{start} p{q}: {FIGURE} ms  target <= {limit} ms  {VERDICT}  "
                             rf"baseline poll floor p50 {FIGURE} ms", out), (start, q, out)
    assert re.search(r"already had it when the call returned for \d+ of 3", out), out
    for label, _, _ in bench_lab_propagation.PHASES:
        assert re.search(rf"{re.escape(label)} +{MS} +max +{MS}", out), (label, out)
    assert re.search(rf"seen by the poll: p50 {MS}", out), out


def test_bench_engines_prints_docker_and_podman_beside_vxmesh(capsys):
    assert bench_engines.main(["--containers", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"vxmesh run -d to reachable from another host, p50: {FIGURE} ms", out), out
    for engine in ("docker", "podman"):
        assert re.search(rf"{engine} run -d to reachable from another host, p50: {FIGURE} ms  "
                         rf"baseline vxmesh run -d p50 {FIGURE} ms \(x[\d.]+\)", out), (engine, out)


def test_bench_services_prints_the_vip_next_to_the_tasks_and_the_death_to_balancer_time(capsys):
    assert bench_services.main(["--requests", "60", "--kills", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"VIP connection rate: {FIGURE} conn/s  baseline direct to the tasks {FIGURE} conn/s", out), out
    assert re.search(rf"VIP connection latency: {FIGURE} ms  baseline direct to the tasks {FIGURE} ms", out), out
    assert re.search(rf"task death to leaving the balancer p50: {FIGURE} ms  target <= 1,000 ms  {VERDICT}", out), out
