"""deploy/topology.py on real namespaces: nodes, cables and switches, and removing them."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from deploy.topology import Cable, Node, Topology, TopologyError, list_netns
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]


@pytest.fixture
def topology():
    with Topology.fresh("vxk") as topology:
        yield topology
    assert not [ns for ns in list_netns() if topology.tag in ns]


def addresses(node: Node, ifname: str) -> dict:
    link = json.loads(node.ip("-j", "addr", "show", ifname).stdout)[0]
    return {"mtu": link["mtu"], "up": "UP" in link["flags"],
            "inet": [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]}


def pings(node: Node, address: str) -> bool:
    return subprocess.run(node.argv("ping", "-c1", "-W2", address), capture_output=True).returncode == 0


def test_a_cable_joins_two_nodes_and_a_switch_joins_many(topology):
    a, b = topology.node("a"), topology.node("b")
    assert addresses(a, "lo")["up"]
    Cable.connect(a, "xa", b, "xb", a_address="10.96.0.1/24", b_address="10.96.0.2/24", mtu=1400)
    assert addresses(a, "xa") == {"mtu": 1400, "up": True, "inet": ["10.96.0.1/24"]}
    assert addresses(b, "xb") == {"mtu": 1400, "up": True, "inet": ["10.96.0.2/24"]}
    assert pings(a, "10.96.0.2")

    switch = topology.switch("sw", "sw0")
    nodes = [topology.node(f"n{i}") for i in (1, 2, 3)]
    for i, node in enumerate(nodes, 1):
        switch.plug(node, f"p{i}", "eth0", f"10.95.0.{i}/24")
    bridge_ports = json.loads(switch.node.ip("-j", "link", "show", "master", "sw0").stdout)
    assert sorted(port["ifname"] for port in bridge_ports) == ["p1", "p2", "p3"]
    assert addresses(switch.node, "sw0")["inet"] == []  # a switch, not a router
    assert all(pings(nodes[0], f"10.95.0.{i}") for i in (2, 3))
    # Nothing of it in the root namespace.
    root_links = {link["ifname"] for link in json.loads(subprocess.run(
        ["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)}
    assert not root_links & {"xa", "xb", "sw0", "p1", "p2", "p3"}


def test_remove_kills_what_runs_inside_and_deletes_what_agents_made_too(topology):
    node = topology.node("h1")
    agent_made = Node.create(f"vxm-{node.name}-ov4200")
    stranger = Node.create(f"{topology.tag}x-h1")  # another tag that starts like ours
    try:
        sleepers = [subprocess.Popen(n.argv("sleep", "300")) for n in (node, agent_made)]
        # nsenter execs in place: once inside, each sleeper's pid is the Popen's.
        wait_for(lambda: sorted(node.pids() + agent_made.pids()) == sorted(s.pid for s in sleepers),
                 what="the sleepers to enter their namespaces")

        Topology(topology.tag).remove()  # found by name, as from a fresh process

        assert [s.wait(timeout=5) for s in sleepers] == [-9, -9]
        assert topology.owned() == [] and not node.exists() and not agent_made.exists()
        assert stranger.exists()
    finally:
        stranger.remove()


def test_a_failed_build_leaves_nothing_behind():
    topology = Topology.fresh("vxk")
    with pytest.raises(TopologyError, match=topology.tag):
        with topology:
            topology.node("h1")
            topology.node("h1")  # exists already: `ip netns add` fails
    assert not [ns for ns in list_netns() if topology.tag in ns]
