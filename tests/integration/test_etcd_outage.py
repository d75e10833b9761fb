"""etcd going away under a running cluster, and coming back.

A lab on a three-member etcd. Losing two members loses the quorum: writes
and lease renewals hang until their deadline, so the controller cannot
store the agents' heartbeats and ends their streams; the agents must notice
(the stream ends with a status, and a silent controller is left anyway),
keep reconnecting, and be up again once the quorum is back. Losing all three
members: every CLI call fails within a bound with a one-line error, the
controller reports itself unhealthy, and afterwards nothing written before
is missing and the data plane is whole.
"""
from __future__ import annotations

import base64
import json
import time

import pytest

from deploy.lab import Lab
from tests.helpers.images import BUSYBOX
from tests.helpers.kernel_tables import tables_match
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import hosts_up, pings, run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 12       # twice the hosts' lease TTL (6 s)
RECOVERY_BOUND = 30.0     # seconds from the quorum's return to every host up
CLI_BOUND = 25.0          # seconds a CLI call may take to fail while etcd is gone
# What must survive an outage; alive/ (leases), status/ and hosts/ (agents
# re-register and re-report) are rewritten by design.
DURABLE = ("networks/", "vnis/", "ipam/", "containers/", "endpoints/")


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=2, image=busybox_archive, etcd_members=3) as lab:
        yield lab


def blue_ip(lab: Lab, name: str, host: int) -> str:
    """Container `name` on `lab.hosts[host]` in `blue`; its address."""
    return run(lab, name, host)["networks"]["blue"]["ip"]


def healthy(lab: Lab) -> bool:
    return lab.cli("health", check=False, timeout=20).returncode == 0


def durable_state(lab: Lab) -> dict[str, str]:
    out = lab.etcdctl("get", "--prefix", "/vxmesh/", "-w", "json").stdout
    kvs = json.loads(out).get("kvs", [])
    state = {}
    for kv in kvs:
        key = base64.b64decode(kv["key"]).decode()
        if key.removeprefix("/vxmesh/").startswith(DURABLE):
            state[key] = base64.b64decode(kv.get("value", "")).decode()
    return state


def test_agents_come_back_after_the_quorum_was_lost(lab):
    ip1 = blue_ip(lab, "q1", 0)
    ip2 = blue_ip(lab, "q2", 1)
    wait_for(lambda: pings(lab, "q1", ip2), 15, "q1 to reach q2")
    # The controller's own member stays: the cluster is there, but without
    # a quorum nothing is written and no lease is renewed.
    lost = lab.etcd_members[1:]
    for member in lost:
        lab.stop_etcd_member(member)
    time.sleep(OUTAGE_SECONDS)
    lab.start_etcd_members(lost)
    back = time.monotonic()
    wait_for(lambda: hosts_up(lab), RECOVERY_BOUND, "every host up again after the quorum came back")
    wait_for(lambda: healthy(lab), RECOVERY_BOUND, "the controller healthy again")
    assert time.monotonic() - back < RECOVERY_BOUND
    wait_for(lambda: pings(lab, "q1", ip2) and pings(lab, "q2", ip1), 15, "q1 and q2 to reach each other")
    wait_for(lambda: tables_match(lab), 15, "every host's kernel table")


def test_a_full_etcd_outage_fails_fast_reports_unhealthy_and_loses_nothing(lab):
    ip3 = blue_ip(lab, "o1", 0)
    ip4 = blue_ip(lab, "o2", 1)
    wait_for(lambda: pings(lab, "o1", ip4), 15, "o1 to reach o2")
    before = durable_state(lab)
    assert any(key.endswith("/o1") for key in before)
    for member in lab.etcd_members:
        lab.stop_etcd_member(member)
    try:
        for argv in (("ps",), ("network", "create", "--subnet", "10.78.0.0/24", "during"),
                     ("run", "-d", "--name", "o3", "--host", lab.hosts[0].name, "--network", "blue",
                      BUSYBOX, "sleep", "1")):
            started = time.monotonic()
            proc = lab.cli(*argv, check=False, timeout=CLI_BOUND + 10)
            took = time.monotonic() - started
            assert proc.returncode == (125 if argv[0] == "run" else 1) and took < CLI_BOUND, (argv, took, proc.stderr)
            assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
            assert "etcd" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        started = time.monotonic()
        health = lab.cli("health", check=False, timeout=CLI_BOUND)
        assert health.returncode == 1 and health.stdout.startswith("unhealthy: "), health.stdout
        assert time.monotonic() - started < 15
    finally:
        lab.start_etcd_members(lab.etcd_members)
    wait_for(lambda: healthy(lab), RECOVERY_BOUND, "the controller healthy again")
    assert lab.cli("health").stdout.startswith("healthy")
    wait_for(lambda: hosts_up(lab), RECOVERY_BOUND, "every host up again")
    after = durable_state(lab)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not any("during" in key or key.endswith("/o3") for key in after)
    wait_for(lambda: pings(lab, "o1", ip4) and pings(lab, "o2", ip3), 15, "o1 and o2 to reach each other")
    wait_for(lambda: tables_match(lab), 15, "every host's kernel table")
    # Writes work again.
    lab.cli("network", "create", "--subnet", "10.78.0.0/24", "after")
