"""Port security with real frames, on a local bridge (the agent's own namespace)
and on an overlay's br0 (its own namespace).

    host (the agent's namespace): bridge BRIDGE 10.96.0.1/24
        |- victim   10.96.0.2  02:42:0a:60:00:02
        `- attacker 10.96.0.3  02:42:0a:60:00:03

The attacker forges what a container given NET_ADMIN can: frames from the
victim's MAC (the bridge would learn it on the attacker's port), ARP naming
the victim's address (the host would send it the victim's traffic), and
IPv4 from the victim's address (the host would answer the victim). Each
attack is shown failing with the table in place and working without it.
"""
from __future__ import annotations

import json
import sys

import pytest

from agent import names
from agent.kernel import bridge, netns, port_security, veth
from agent.kernel.port_security import Port
from tests.helpers.kernel_lab import (
    KernelLab,
    attach_container,
    full_id,
    in_ns,
    mac_for,
    one_host_with_overlay,
    pings,
)
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

BRIDGE = "vxb00000000ps"
SPEC = bridge.LocalBridgeSpec(BRIDGE, "10.96.0.0/24", "10.96.0.1")
VICTIM, ATTACKER = "10.96.0.2", "10.96.0.3"
MARKER_PORT = 9999

# Runs in the attacker's namespace: raw frames out of eth0, as given on the command line.
FORGE = """
import sys
from scapy.all import ARP, IP, UDP, Ether, Raw, sendp
kind, mac, ip, gateway, marker, count = sys.argv[1:7]
if kind == "mac":      # anything from the victim's MAC teaches the bridge where it is
    frame = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=2, hwsrc=mac, psrc=ip, pdst=gateway)
elif kind == "arp":    # "who has the gateway? tell <victim's address> at my MAC"
    frame = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac, psrc=ip, pdst=gateway)
elif kind == "ip":     # the victim's address as source
    frame = Ether(src=mac) / IP(src=ip, dst=gateway) / UDP(sport=40000, dport=%d) / Raw(marker.encode())
elif kind == "flood":  # unicast to a MAC no port has: the bridge floods it
    frame = Ether(src=mac, dst="02:42:0a:60:00:99") / IP(src=ip, dst="10.96.0.99") / UDP(dport=9)
sendp(frame, iface="eth0", count=int(count), verbose=False)
""" % MARKER_PORT

UDP_SINK = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", %d))
print("ready", flush=True)
while True:
    print(s.recv(100).decode(), flush=True)
""" % MARKER_PORT


def forge(ns: str, kind: str, mac: str, ip: str, gateway: str, marker: str = "-", count: int = 3) -> None:
    in_ns(ns, sys.executable, "-c", FORGE, kind, mac, ip, gateway, marker, str(count))


def neighbour(ns: str, ip: str) -> str | None:
    entries = json.loads(in_ns(ns, "ip", "-j", "neigh", "show", ip).stdout)
    return entries[0].get("lladdr") if entries else None


def rx_packets(ns: str) -> int:
    return json.loads(in_ns(ns, "ip", "-j", "-s", "link", "show", "eth0").stdout)[0]["stats64"]["rx"]["packets"]


def counted(table_ns: str, ifname: str) -> int:
    """The port's drop counter, read with nft as an operator would."""
    out = json.loads(in_ns(table_ns, "nft", "-j", "list", "counter", "bridge", port_security.TABLE,
                           f"{port_security.COUNTER_PREFIX}{ifname}").stdout)
    return next(o["counter"]["packets"] for o in out["nftables"] if "counter" in o)


def fdb_port_host(host: str, mac: str) -> str | None:
    for entry in json.loads(in_ns(host, "bridge", "-j", "fdb", "show", "br", BRIDGE).stdout):
        if entry.get("mac") == mac and "permanent" not in entry.get("state", ""):
            return entry["ifname"]
    return None


async def local_bridge(lab: KernelLab):
    host = lab.ns("h1")
    agent = lab.agent(host)
    await agent.call(bridge.ensure_bridge, SPEC)
    ports = {}
    for name, ip in (("victim", VICTIM), ("attacker", ATTACKER)):
        ns = f"{lab.tag}-{name}"
        await agent.call(netns.ensure_netns, ns)
        iface = veth.Interface(container_netns=ns, ifname="eth0", peer_netns=None, peer_ifname=f"p{name}",
                               bridge=BRIDGE, address=f"{ip}/24", mac=mac_for(ip), mtu=1500,
                               default_gateway=SPEC.gateway)
        ports[name] = (ns, iface)
    # The rules first, as the agent does: no frame ever crosses an unguarded port.
    guarded = [Port(i.peer_ifname, i.mac, (i.ip,)) for _, i in ports.values()]
    await agent.call(port_security.converge, None, guarded)
    for _, iface in ports.values():
        await agent.call(veth.ensure_interface, iface)
    return host, agent, ports, guarded


def test_ports_and_rules_are_checked_before_anything_is_applied():
    with pytest.raises(ValueError, match="'02:42:0a:60:00' is not a unicast MAC"):
        Port("pvictim", "02:42:0a:60:00", (VICTIM,))
    with pytest.raises(ValueError, match="multicast|not a unicast"):
        Port("pvictim", "03:42:0a:60:00:02", (VICTIM,))
    with pytest.raises(ValueError, match="no address"):
        Port("pvictim", mac_for(VICTIM), ())
    with pytest.raises(ValueError, match="appears twice"):
        port_security.ruleset([Port("p1", mac_for(VICTIM), (VICTIM,)), Port("p1", mac_for(ATTACKER), (ATTACKER,))])


async def test_a_container_cannot_take_over_its_neighbour_on_a_local_bridge(lab: KernelLab):
    host, agent, ports, guarded = await local_bridge(lab)
    (victim, v), (attacker, a) = ports["victim"], ports["attacker"]
    sink = lab.spawn(host, sys.executable, "-u", "-c", UDP_SINK)
    assert sink.stdout.readline().strip() == "ready"
    # What the containers may do, they do.
    assert pings(victim, SPEC.gateway) and pings(attacker, VICTIM) and pings(victim, ATTACKER)
    assert fdb_port_host(host, v.mac) == v.peer_ifname

    before = counted(host, a.peer_ifname)
    in_ns(host, "ip", "neigh", "flush", "dev", BRIDGE)
    forge(attacker, "mac", v.mac, VICTIM, SPEC.gateway)               # poison the bridge's learning
    forge(attacker, "arp", a.mac, VICTIM, SPEC.gateway)               # claim the victim's address
    forge(attacker, "ip", a.mac, VICTIM, SPEC.gateway, "spoofed")     # send from it
    assert fdb_port_host(host, v.mac) == v.peer_ifname
    assert neighbour(host, VICTIM) != a.mac
    assert counted(host, a.peer_ifname) == before + 9
    assert pings(victim, SPEC.gateway)  # the victim's own traffic still flows

    # Unicast flooded for an unknown MAC reaches only the port that has it: none.
    received = rx_packets(victim)
    forge(attacker, "flood", a.mac, ATTACKER, SPEC.gateway, count=50)
    assert rx_packets(victim) - received < 50

    # IPv6 (from the link-local address the kernel made) is not the container's to send.
    (link_local,) = json.loads(in_ns(victim, "ip", "-j", "-6", "addr", "show", "eth0").stdout)[0]["addr_info"]
    victim6 = f"{link_local['local']}%eth0"
    assert not pings(attacker, victim6, "-6")

    # Converged again with nothing changed: nothing is rebuilt (the rules keep their handles).
    def handles() -> list[int]:
        listing = json.loads(in_ns(host, "nft", "-j", "list", "table", "bridge", port_security.TABLE).stdout)
        return [o["rule"]["handle"] for o in listing["nftables"] if "rule" in o]
    kept = handles()
    await agent.call(port_security.converge, None, list(reversed(guarded)))
    assert handles() == kept

    # A third container comes and goes: only its port is touched (the others'
    # rules keep their handles, the attacker's counter its count), and the table
    # read back afterwards is the one a rebuild would make (nothing to rebuild).
    third = Port("pthird", mac_for("10.96.0.4"), ("10.96.0.4",))
    await agent.call(port_security.converge, None, guarded + [third], guarded)
    assert set(kept) <= set(handles()) and counted(host, a.peer_ifname) == before + 9
    grown = handles()
    await agent.call(port_security.converge, None, guarded + [third])
    assert handles() == grown
    await agent.call(port_security.converge, None, guarded, guarded + [third])
    assert handles() == kept and counted(host, a.peer_ifname) == before + 9

    # Level-triggered: a rule deleted behind the agent's back comes back, the counter kept.
    chain = json.loads(in_ns(host, "nft", "-j", "list", "chain", "bridge", port_security.TABLE,
                             f"from_{a.peer_ifname}").stdout)
    handle = next(o["rule"]["handle"] for o in chain["nftables"] if "rule" in o)
    in_ns(host, "nft", "delete", "rule", "bridge", port_security.TABLE, f"from_{a.peer_ifname}",
          "handle", str(handle))
    await agent.call(port_security.converge, None, guarded)
    assert counted(host, a.peer_ifname) == before + 9
    forge(attacker, "ip", a.mac, VICTIM, SPEC.gateway, "spoofed-again")
    assert counted(host, a.peer_ifname) == before + 12
    assert (await agent.call(port_security.dropped, None, a.peer_ifname)).packets == before + 12

    # Control: without the table every attack works.
    await agent.call(port_security.remove, None)
    await agent.call(port_security.remove, None)   # absent is fine
    assert await agent.call(port_security.dropped, None, a.peer_ifname) is None
    in_ns(host, "ip", "neigh", "flush", "dev", BRIDGE)
    # (The victim's own frames, its IPv6 ones among them now, teach the bridge
    # back: forged until the bridge has learned the attacker's port.)
    wait_for(lambda: forge(attacker, "mac", v.mac, VICTIM, SPEC.gateway)
             or fdb_port_host(host, v.mac) == a.peer_ifname, timeout=10, what="the bridge to learn the forged MAC")
    forge(attacker, "arp", a.mac, VICTIM, SPEC.gateway)
    wait_for(lambda: neighbour(host, VICTIM) == a.mac, timeout=5, what="the host to learn the forged ARP")
    forge(attacker, "ip", a.mac, VICTIM, SPEC.gateway, "spoofed-unguarded", count=1)
    assert sink.stdout.readline().strip() == "spoofed-unguarded"
    received = rx_packets(victim)
    forge(attacker, "flood", a.mac, ATTACKER, SPEC.gateway, count=50)
    assert rx_packets(victim) - received >= 50
    wait_for(lambda: pings(attacker, victim6, "-6"), timeout=10, what="IPv6 between the containers")


async def test_overlay_ports_are_guarded_in_the_overlay_namespace(lab: KernelLab):
    h1, agent, ov, spec = await one_host_with_overlay(lab)
    # Rules for both ports, then the ports (as the agent orders it).
    ids = {"victim": ("aa01", "10.77.0.2"), "attacker": ("aa02", "10.77.0.3")}
    guarded = [Port(names.overlay_veth(full_id(cid), 0), mac_for(ip), (ip,)) for cid, ip in ids.values()]
    await agent.call(port_security.converge, ov, guarded)
    victim = await attach_container(agent, h1, "aa01", "10.77.0.2", 24, spec.mtu)
    attacker = await attach_container(agent, h1, "aa02", "10.77.0.3", 24, spec.mtu)
    assert pings(victim.container_netns, "10.77.0.3") and pings(attacker.container_netns, spec.gateway)
    # The host's own namespace has no such table: the overlay's is in its namespace.
    assert in_ns(h1, "nft", "list", "table", "bridge", port_security.TABLE, check=False).returncode != 0

    in_ns(ov, "ip", "neigh", "flush", "dev", names.BRIDGE)
    forge(attacker.container_netns, "mac", victim.mac, "10.77.0.2", spec.gateway)
    forge(attacker.container_netns, "arp", attacker.mac, "10.77.0.2", spec.gateway)
    assert overlay_fdb_port(ov, victim.mac) == victim.peer_ifname
    assert neighbour(ov, "10.77.0.2") != attacker.mac
    assert (await agent.call(port_security.dropped, ov, attacker.peer_ifname)).packets == 6

    # Control (forged until the bridge learns it: the victim's own frames teach it back).
    await agent.call(port_security.remove, ov)
    wait_for(lambda: forge(attacker.container_netns, "mac", victim.mac, "10.77.0.2", spec.gateway)
             or overlay_fdb_port(ov, victim.mac) == attacker.peer_ifname, timeout=10,
             what="the bridge to learn the forged MAC")


def overlay_fdb_port(ov: str, mac: str) -> str | None:
    for entry in json.loads(in_ns(ov, "bridge", "-j", "fdb", "show", "br", names.BRIDGE).stdout):
        if entry.get("mac") == mac and "permanent" not in entry.get("state", ""):
            return entry["ifname"]
    return None
