"""Attacks from the fabric and from containers, on a real lab.

A rogue namespace plugged into the lab's fabric bridge forges VXLAN: a real
network's VNI, a real container's MAC and IP inside, a UDP datagram with a
marker. With the VTEP filter on (the default) the host drops and counts it
and the container never sees it; with the filter switched off in the
agent's config (the control) the same packet is delivered, so the test
fails if the defence goes. Then: containers reach their own network's
peers and gateway and the outside world, but not another network, its
gateway, their agent's API or the controller.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.kernel import vtep_filter
from agent.names import container_netns
from deploy.lab import Lab
from deploy.topology import Node
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect, network, pings, run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

ROGUE_IP = "10.231.0.200"   # on the fabric's /24, unused by the lab (hosts are .11.., ext .100)
MARKER_PORT = 9999

# Runs in the rogue namespace: VXLAN to the VTEP, inner frame for the container.
FORGE = """
import sys
from scapy.all import IP, UDP, Ether, Raw, send
from scapy.layers.vxlan import VXLAN
vtep, vni, mac, ip, marker, count = sys.argv[1:7]
inner = (Ether(src="02:42:0a:ee:ee:ee", dst=mac) / IP(src="10.238.238.238", dst=ip)
         / UDP(sport=40000, dport=%d) / Raw(marker.encode()))
send(IP(dst=vtep) / UDP(sport=40001, dport=4789) / VXLAN(vni=int(vni), flags=0x08) / inner,
     count=int(count), inter=0.05, verbose=False)
""" % MARKER_PORT

# Runs inside a container (busybox sh): "open" if a TCP connection is made
# (`timeout` ends the wait on a server that keeps it open), else why not.
PROBE = ('timeout 3 nc -w 2 "$0" "$1" </dev/null >/dev/null 2>/tmp/probe.err; '
         'if [ $? -eq 1 ]; then echo "closed: $(cat /tmp/probe.err)"; else echo open; fi')
# The same from a lab host, which runs the host's python.
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except OSError as err:
    print(f"closed: {err}")
"""


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=2, image=busybox_archive) as lab:
        yield lab


@pytest.fixture
def rogue(lab: Lab):
    node = Node(lab.topology.name("rogue"))
    try:
        lab.plug("rogue", ROGUE_IP)
        yield node.name
    finally:
        node.remove()  # its veth's fabric end goes with it


def rejected(lab: Lab, host: int) -> int | None:
    proc = lab.netns_exec(lab.hosts[host].netns, "nft", "-j", "list", "counter", "inet",
                          vtep_filter.TABLE, vtep_filter.COUNTER, check=False)
    if proc.returncode != 0:
        return None
    return next(o["counter"]["packets"] for o in json.loads(proc.stdout)["nftables"] if "counter" in o)


def allowed_vteps(lab: Lab, host: int) -> set[str] | None:
    proc = lab.netns_exec(lab.hosts[host].netns, "nft", "-j", "list", "set", "inet",
                          vtep_filter.TABLE, "vteps4", check=False)
    if proc.returncode != 0:
        return None
    sets = [o["set"] for o in json.loads(proc.stdout)["nftables"] if "set" in o]
    return set(sets[0].get("elem", []))


def delivered(lab: Lab, rogue: str, container: dict, vni: int, tmp: Path) -> bool:
    """Forge the packet from the fabric; True if the container's eth0 saw its marker."""
    marker = f"vxmesh-rogue-{secrets.token_hex(4)}"
    network = container["networks"]["blue"]
    pcap = tmp / f"{marker}.pcap"
    netns = container_netns(container["host"], container["id"])
    capture = subprocess.Popen(["ip", "netns", "exec", netns, "tcpdump", "-i", "eth0", "-U", "-n",
                                "-w", str(pcap), "udp", "port", str(MARKER_PORT)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pcap.exists(), what="tcpdump to start in the container")
        lab.netns_exec(rogue, sys.executable, "-c", FORGE, lab.hosts[0].underlay_ip, str(vni),
                       network["mac"], network["ip"], marker, "3")
        time.sleep(1.5)  # the packets cross two veths and a bridge in well under that
    finally:
        capture.terminate()
        capture.wait(timeout=10)
    return marker.encode() in pcap.read_bytes()


def set_vtep_filter(lab: Lab, host: int, value: str) -> None:
    """Restart the host's agent with vtep-filter set in its config file, as an operator would."""
    lab.restart_agent_with(lab.hosts[host], {**lab.agent_options, "vtep-filter": value})


def test_forged_vxlan_from_the_fabric_is_dropped_unless_the_filter_is_off(lab, rogue, tmp_path):
    victim = run(lab, "victim", 0, "blue")
    peer = run(lab, "peer", 1, "blue")
    vni = network(lab, "blue")["vni"]
    h1, h2 = lab.hosts[0], lab.hosts[1]
    # h1 accepts VXLAN from h2, the other live host; the real overlay works.
    wait_for(lambda: allowed_vteps(lab, 0) == {h2.underlay_ip}, what="h1 to allow h2's VTEP")
    assert lab.cli("exec", "peer", "--", "ping", "-c", "2", "-W", "2",
                   victim["networks"]["blue"]["ip"], check=False).returncode == 0

    before = rejected(lab, 0)
    assert not delivered(lab, rogue, victim, vni, tmp_path)
    wait_for(lambda: rejected(lab, 0) >= before + 3, timeout=5, what="h1's drop counter to count 3")

    # Control: the very same packet, with the filter switched off on h1, arrives.
    try:
        set_vtep_filter(lab, 0, "off")
        wait_for(lambda: rejected(lab, 0) is None, what="h1's agent to remove the filter table")
        assert inspect(lab, "victim")["state"] == "running"
        assert delivered(lab, rogue, victim, vni, tmp_path)
    finally:
        set_vtep_filter(lab, 0, "on")
    wait_for(lambda: allowed_vteps(lab, 0) == {h2.underlay_ip}, what="the filter back on h1")
    assert not delivered(lab, rogue, victim, vni, tmp_path)

    # Hosts leaving and joining: h2 is cut from the underlay, its peers' probes
    # find its VTEP silent, h1 stops accepting it (controller/liveness.py); h2
    # comes back and is accepted again.
    lab.cut_underlay(h2)
    try:
        wait_for(lambda: allowed_vteps(lab, 0) == set(), timeout=30, what="h1 to drop h2's VTEP")
    finally:
        lab.restore_underlay(h2)
    lab.wait_hosts_up([h2.name])
    wait_for(lambda: allowed_vteps(lab, 0) == {h2.underlay_ip}, timeout=30, what="h1 to allow h2 again")
    assert lab.cli("exec", "peer", "--", "ping", "-c", "2", "-W", "2",
                   victim["networks"]["blue"]["ip"], check=False).returncode == 0


def probe(lab: Lab, container: str, address: str, port: int) -> str:
    return lab.cli("exec", container, "--", "sh", "-c", PROBE, address, str(port),
                   check=False).stdout.strip()


def test_containers_reach_their_network_but_not_other_networks_or_the_control_plane(lab):
    lab.cli("network", "create", "--subnet", "10.79.0.0/24", "orange")
    b1, b2 = run(lab, "iso-b1", 0, "blue"), run(lab, "iso-b2", 1, "blue")
    o1, o2 = run(lab, "iso-o1", 0, "orange"), run(lab, "iso-o2", 1, "orange")
    blue_gw = network(lab, "blue")["gateway"]
    orange_gw = network(lab, "orange")["gateway"]
    h1 = lab.hosts[0]
    api_port = int(h1.api.rpartition(":")[2])
    controller_ip, controller_port = "10.231.0.2", 7946

    # Controls: the same probes succeed where they should.
    assert pings(lab, "iso-b1", b2["networks"]["blue"]["ip"], wait=2)     # peer across hosts
    assert pings(lab, "iso-b1", blue_gw, wait=2)                           # own gateway
    assert pings(lab, "iso-o1", o2["networks"]["orange"]["ip"], wait=2)
    assert probe(lab, "iso-b1", lab.ext_ip, 8080) == "open"       # egress through NAT
    from_host = lab.netns_exec(h1.netns, sys.executable, "-c", CONNECT, controller_ip, str(controller_port))
    assert from_host.stdout.strip() == "open"                     # the agent's own path
    from_host = lab.netns_exec(h1.netns, sys.executable, "-c", CONNECT, h1.underlay_ip, str(api_port))
    assert from_host.stdout.strip() == "open"

    # Other networks: neither their containers (same host or not) nor their gateway.
    for target in (o1["networks"]["orange"]["ip"], o2["networks"]["orange"]["ip"], orange_gw):
        assert not pings(lab, "iso-b1", target, wait=2), target
    assert not pings(lab, "iso-o1", b1["networks"]["blue"]["ip"], wait=2)

    # The control plane: the agent's API (at the host's VTEP and at the
    # gwbridge gateway, both the host itself) and the controller.
    gwbridge_gateway = "172.18.0.1"
    for address, port in ((h1.underlay_ip, api_port), (gwbridge_gateway, api_port),
                          (controller_ip, controller_port)):
        assert probe(lab, "iso-b1", address, port).startswith("closed"), (address, port)
