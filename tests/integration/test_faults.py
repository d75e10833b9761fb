"""Fault injection on a 3-host namespace lab: agent restarts under traffic, IP
reuse across hosts, address exhaustion (dead hosts: test_liveness.py). Every test checks the
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


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=3, image=busybox_archive) as lab:
        yield lab


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
