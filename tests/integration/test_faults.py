"""Fault injection on a 3-host namespace lab: dead hosts, agent restarts under
traffic, IP reuse across hosts, address exhaustion. Every test checks the
kernel tables the hosts actually hold afterwards."""
from __future__ import annotations

import time

import pytest

from tests.helpers.images import BUSYBOX
from tests.helpers.kernel_tables import desired_entries, kernel_entries
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect, pings, run
from tests.helpers.polling import wait_for
from tests.helpers.tool_text import ping_counts

pytestmark = pytest.mark.integration

DEAD_HOST_BOUND = 10.0   # seconds: the default host TTL (6 s) plus margin


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=3, image=busybox_archive) as lab:
        yield lab


def test_dead_host_is_marked_down_and_its_endpoints_withdrawn_then_restored(lab):
    a = run(lab, "dh1", 0)
    b = run(lab, "dh2", 1)
    run(lab, "dh3", 2)
    b_row = (b["networks"]["blue"]["mac"], b["networks"]["blue"]["ip"], lab.hosts[1].underlay_ip)
    assert b_row in kernel_entries(lab, 0)
    killed = time.monotonic()
    lab.stop_agent(lab.hosts[1])            # kill -9: no goodbye, heartbeats just stop
    wait_for(lambda: lab.host_states().get(lab.hosts[1].name) == "down", DEAD_HOST_BOUND,
             "h2 to be marked down")
    down_at = time.monotonic()
    wait_for(lambda: b_row not in kernel_entries(lab, 0) and b_row not in kernel_entries(lab, 2),
             DEAD_HOST_BOUND, "h2's endpoint to leave h1's and h3's kernels")
    withdrawn_at = time.monotonic()
    assert down_at - killed <= DEAD_HOST_BOUND and withdrawn_at - killed <= DEAD_HOST_BOUND
    for host in (0, 2):
        assert kernel_entries(lab, host) == desired_entries(lab, host, without={lab.hosts[1].name})
    # Its address stays reserved: a new container does not get it.
    c = run(lab, "dh4", 0)
    assert c["networks"]["blue"]["ip"] != b["networks"]["blue"]["ip"]
    lab.start_agent(lab.hosts[1])
    wait_for(lambda: b_row in kernel_entries(lab, 0), 15, "h2's endpoint to come back")
    assert inspect(lab, "dh2")["state"] == "running"
    assert pings(lab, "dh1", b["networks"]["blue"]["ip"])
    for host in range(3):
        assert kernel_entries(lab, host) == desired_entries(lab, host)
    assert a["state"] == "running"


def test_agent_restart_under_traffic_loses_at_most_a_handful(lab):
    b = run(lab, "tr2", 1)
    # The pinger is itself a container on h1: its traffic and its log do not
    # depend on h1's agent, which is killed and restarted meanwhile.
    lab.cli("run", "-d", "--name", "tr1", "--host", lab.hosts[0].name, "--network", "blue", BUSYBOX,
            "ping", "-i", "0.02", "-c", "250", "-W", "1", b["networks"]["blue"]["ip"])
    time.sleep(1.0)
    lab.stop_agent(lab.hosts[0])
    time.sleep(0.5)
    lab.start_agent(lab.hosts[0])
    wait_for(lambda: inspect(lab, "tr1")["state"] == "exited", 30, "the pinger to end")
    out = lab.cli("logs", "tr1").stdout
    sent, received = ping_counts(out)
    assert sent == 250 and sent - received <= 5, out[-300:]
    for host in range(3):
        assert kernel_entries(lab, host) == desired_entries(lab, host)


def test_a_reused_ip_on_another_host_works_at_once_everywhere(lab):
    lab.cli("network", "create", "--subnet", "10.88.0.0/24", "reuse")
    run(lab, "ru-client", 2, "reuse")
    old = run(lab, "ru-old", 0, "reuse")
    assert pings(lab, "ru-client", old["networks"]["reuse"]["ip"])   # h3 learnt old's MAC and VTEP
    lab.cli("rm", "-f", "ru-old")
    new = run(lab, "ru-new", 1, "reuse")
    assert new["networks"]["reuse"]["ip"] == old["networks"]["reuse"]["ip"]
    assert pings(lab, "ru-client", new["networks"]["reuse"]["ip"])   # right away, from the new VTEP
    for host in range(3):
        assert kernel_entries(lab, host, "reuse") == desired_entries(lab, host, "reuse")


def test_a_full_subnet_is_a_clear_error_and_removal_frees_an_address(lab):
    lab.cli("network", "create", "--subnet", "10.89.0.0/29", "tiny")   # 5 usable addresses
    for i in range(5):
        run(lab, f"full{i}", i % 3, "tiny")
    refused = lab.cli("run", "--name", "full5", "--network", "tiny", BUSYBOX, "sleep", "1", check=False)
    assert refused.returncode != 0 and "no free address in 10.89.0.0/29" in refused.stderr
    assert "Traceback" not in refused.stderr
    lab.cli("rm", "-f", "full2")
    assert run(lab, "full5", 0, "tiny")["state"] == "running"
