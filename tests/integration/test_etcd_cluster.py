"""A controller on a three-member etcd cluster survives losing a member.

The lab runs three etcd members in namespaces of their own (each started as
vxmesh-etcd.service starts it, from an etcd.yaml like the deployed one) and
gives the controller all three client URLs. One test kills the member the
controller talks to, after making it the leader, so its loss costs both a
client failover and an election, and checks that reads and writes go on,
that nothing was lost, and that the member rejoins and catches up. The other
freezes that member instead: its connections stay open and nothing answers,
so only deadlines tell the controller to move on.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest

from deploy.lab import ETCD_CLIENT_PORT, Lab, LabEtcdMember
from deploy.lab_processes import is_alive
from tests.helpers import lab_cli
from tests.helpers.lab import running_lab
from tests.helpers.lab_cli import containers, hosts_up, inspect, pings
from tests.helpers.polling import wait_for
from tests.helpers.tool_text import ss_addresses_on_port

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(busybox_archive):
    with running_lab(hosts=2, image=busybox_archive, etcd_members=3) as lab:
        yield lab


def etcd_peers_of_controller(lab: Lab) -> set[str]:
    """The member addresses the controller has an open connection to."""
    out = subprocess.run(["ss", "-N", lab.ctl_ns, "-Htn", "state", "established", "dport", f"= :{ETCD_CLIENT_PORT}"],
                         capture_output=True, text=True, check=True).stdout
    return ss_addresses_on_port(out, ETCD_CLIENT_PORT)


def endpoint_status(lab: Lab, members: list[LabEtcdMember] | None = None) -> dict[str, dict]:
    """{client URL: etcd's status of that member}."""
    out = lab.etcdctl("endpoint", "status", "-w", "json", endpoints=members).stdout
    return {row["Endpoint"]: row["Status"] for row in json.loads(out)}


def make_leader(lab: Lab, member: LabEtcdMember) -> None:
    status = endpoint_status(lab)
    lab.etcdctl("move-leader", format(status[member.client_url]["header"]["member_id"], "x"))
    wait_for(lambda: (
        lambda s: s["leader"] == s["header"]["member_id"])(endpoint_status(lab, [member])[member.client_url]),
        timeout=15.0, what=f"{member.name} to lead")


def cluster_state(lab: Lab, network_names: tuple[str, ...] = ("amber", "ochre")) -> dict:
    """What vxmesh keeps: networks and containers, as the CLI shows them."""
    networks = {}
    for name in network_names:
        proc = lab.cli("network", "inspect", name, check=False)
        if proc.returncode == 0:
            data = lab_cli.network_facts(json.loads(proc.stdout)[0])
            networks[name] = (data["subnet"], data["vni"], sorted((e["container"], e["ip"]) for e in data["endpoints"]))
    listed = {c["name"]: (c["host"], c["state"], c["networks"]) for c in containers(lab)}
    return {"networks": networks, "containers": listed}


def run(lab: Lab, name: str, host: int, network: str = "amber") -> str:
    """Container `name` running on `lab.hosts[host]`; its address."""
    lab_cli.run(lab, name, host, network)
    wait_for(lambda: inspect(lab, name)["state"] == "running", timeout=15.0, what=f"{name} running")
    return inspect(lab, name)["networks"][network]["ip"]


def network_keys(lab: Lab, member: LabEtcdMember) -> set[str]:
    """The network keys `member` holds in its own copy (a serializable read, not through the leader)."""
    reply = json.loads(lab.etcdctl("get", "--consistency=s", "--keys-only", "--prefix", "/vxmesh/networks/",
                                   "-w", "json", endpoints=[member]).stdout)
    return {base64.b64decode(kv["key"]).decode() for kv in reply.get("kvs", [])}


def test_losing_the_member_the_controller_uses_keeps_state_and_service(lab):
    h1, h2 = lab.hosts
    e1 = lab.etcd_members[0]
    lab.cli("network", "create", "--subnet", "10.79.0.0/24", "amber")
    run(lab, "c1", 0)
    c2 = run(lab, "c2", 1)
    wait_for(lambda: pings(lab, "c1", c2), timeout=15.0, what="c1 to reach c2")
    before = cluster_state(lab)
    daemons = {role: lab._procs.records[role] for role in ("controller", f"agent-{h1.name}", f"agent-{h2.name}")}

    # The controller starts on the first member that answers, and uses no other yet.
    assert etcd_peers_of_controller(lab) == {e1.address}
    make_leader(lab, e1)
    lab.stop_etcd_member(e1)

    # Service: reads and writes go on through the two members left.
    wait_for(lambda: hosts_up(lab), timeout=15.0, what="every host up again in `host ls`")
    lab.cli("network", "create", "--subnet", "10.80.0.0/24", "ochre")
    c3 = run(lab, "c3", 1)
    # c3's address reached h1's kernel: the controller's watch moved to another member.
    wait_for(lambda: pings(lab, "c1", c3), timeout=15.0, what="c1 to reach c3")
    assert pings(lab, "c1", c2)
    assert e1.address not in etcd_peers_of_controller(lab)

    # State: everything from before is still there, next to what was added.
    after = cluster_state(lab)
    assert after["networks"]["amber"][:2] == before["networks"]["amber"][:2]
    assert set(before["networks"]["amber"][2]) < set(after["networks"]["amber"][2])
    assert {k: after["containers"][k] for k in before["containers"]} == before["containers"]
    assert after["networks"]["ochre"][:1] == ("10.80.0.0/24",)
    # The controller failed over; neither it nor an agent was restarted.
    assert all(is_alive(record) for record in daemons.values())

    # The member comes back from its data directory and catches up.
    lab.start_etcd_member(e1)
    members = json.loads(lab.etcdctl("member", "list", "-w", "json").stdout)["members"]
    assert sorted(m["name"] for m in members) == ["e1", "e2", "e3"]
    wait_for(lambda: len({s["header"]["revision"] for s in endpoint_status(lab).values()}) == 1,
             timeout=15.0, what="the three members at one revision")
    # Read from e1's own copy, not through the leader.
    assert {"/vxmesh/networks/amber", "/vxmesh/networks/ochre"} <= network_keys(lab, e1)
    assert cluster_state(lab) == after


def test_a_member_that_stops_answering_is_left_behind(lab):
    e1, e2 = lab.etcd_members[:2]
    lab.cli("network", "create", "--subnet", "10.82.0.0/24", "teal")
    run(lab, "t1", 0, "teal")
    assert etcd_peers_of_controller(lab) == {e1.address}
    # e1 only goes silent; the cluster keeps its leader and its quorum.
    make_leader(lab, e2)
    lab.pause_etcd_member(e1)
    try:
        # The first reads wait out their deadline on e1, then go elsewhere;
        # the controller's watch leaves e1 with them.
        t2 = run(lab, "t2", 1, "teal")
        wait_for(lambda: pings(lab, "t1", t2), timeout=15.0, what="t1 to reach t2")
        assert cluster_state(lab, ("teal",))["containers"].keys() == {"t1", "t2"}
        assert set(lab.host_states().values()) == {"up"}
    finally:
        lab.resume_etcd_member(e1)
    wait_for(lambda: len({s["header"]["revision"] for s in endpoint_status(lab).values()}) == 1,
             timeout=15.0, what="the three members at one revision")
