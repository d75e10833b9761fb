"""Local bridge networks and the host firewall, with real packets.

The lab (all inside namespaces named vxk<4 hex>-..., deleted pass or fail):

    ext (10.98.0.2) --- u1/x1 --- h1 (10.98.0.1, the "host"; the agent runs here)
                                   |- BR_A 172.30.0.1/24: a1 .2, a2 .3
                                   `- BR_B 172.31.0.1/24: b1 .2

ext has no route to the container subnets, so anything it receives from
a container was masqueraded, and it reaches containers only through
published ports on 10.98.0.1.
"""
from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from agent.kernel import bridge, firewall, netns, veth
from agent.kernel.firewall import BridgeRules, HostRules, PortRule
from tests.helpers.kernel_lab import Agent, KernelLab, blocked, in_ns, link_json, mac_for, pings

pytestmark = pytest.mark.integration

HOST, EXT = "10.98.0.1", "10.98.0.2"
BR_A, BR_B = "vxb00000000aa", "vxb00000000bb"
SPEC_A = bridge.LocalBridgeSpec(BR_A, "172.30.0.0/24", "172.30.0.1")
SPEC_B = bridge.LocalBridgeSpec(BR_B, "172.31.0.0/24", "172.31.0.1")
BRIDGES = tuple(BridgeRules(s.name, s.subnet, s.gateway, icc=True) for s in (SPEC_A, SPEC_B))
WEB = PortRule("tcp", 8080, "172.30.0.2", 80, BR_A)
DNS = PortRule("udp", 5353, "172.31.0.2", 53, BR_B)
CHAINS = [
    ("prerouting", "nat", "prerouting", -100),
    ("output", "nat", "output", -100),
    ("postrouting", "nat", "postrouting", 100),
    ("forward", "filter", "forward", 0),
    ("input", "filter", "input", 0),
]

# Servers answer "hello <the peer address they saw>".
TCP_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(f"hello {peer[0]}".encode())
    c.close()
"""
UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(64)
    s.sendto(f"hello {peer[0]}".encode(), peer)
"""
CLIENT = """
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=2)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.sendto(b"x", (host, port))
    print(s.recv(100).decode())
except OSError as e:
    print(f"failed: {e}")
"""


def ask(ns: str, proto: str, host: str, port: int) -> str:
    """What the server reached at host:port answers, or "failed: ..."."""
    return in_ns(ns, sys.executable, "-c", CLIENT, proto, host, str(port)).stdout.strip()


def serve(lab: KernelLab, ns: str, script: str, port: int) -> None:
    proc = lab.spawn(ns, sys.executable, "-c", script, str(port))
    assert proc.stdout.readline().strip() == "ready"


def without_handles(objects: list[dict]) -> list[dict]:
    return [
        {kind: {k: v for k, v in body.items() if k != "handle"}}
        for obj in objects
        for kind, body in obj.items()
    ]


async def container(lab: KernelLab, agent: Agent, name: str, spec: bridge.LocalBridgeSpec,
                    ip: str) -> str:
    cns = f"{lab.tag}-{name}"
    await agent.call(netns.ensure_netns, cns)
    await agent.call(veth.ensure_interface, veth.Interface(
        container_netns=cns, ifname="eth0", peer_netns=None, peer_ifname=f"v{name}",
        bridge=spec.name, address=f"{ip}/24", mac=mac_for(ip), mtu=1500,
        default_gateway=spec.gateway,
    ))
    return cns


async def host_with_bridges(lab: KernelLab):
    h1, ext = lab.ns("h1"), lab.ns("ext")
    lab.wire(h1, "u1", f"{HOST}/24", ext, "x1", f"{EXT}/24")
    agent = lab.agent(h1)
    for spec in (SPEC_A, SPEC_B):
        await agent.call(bridge.ensure_bridge, spec)
    a1 = await container(lab, agent, "a1", SPEC_A, "172.30.0.2")
    a2 = await container(lab, agent, "a2", SPEC_A, "172.30.0.3")
    b1 = await container(lab, agent, "b1", SPEC_B, "172.31.0.2")
    return h1, ext, agent, a1, a2, b1


# --------------------------------------------------------------------------
# the firewall with real packets


async def test_bridges_isolation_masquerade_and_published_ports(lab: KernelLab):
    h1, ext, agent, a1, a2, b1 = await host_with_bridges(lab)
    rules = HostRules(bridges=BRIDGES, ports=(WEB, DNS))
    await agent.call(firewall.apply, rules)
    assert in_ns(h1, "cat", "/proc/sys/net/ipv4/conf/all/route_localnet").stdout.strip() == "1"

    # One bridge is one network; two bridges are two isolated networks.
    assert pings(a1, "172.30.0.3") and pings(a1, "172.30.0.1")
    assert pings(b1, "172.31.0.1")
    assert blocked(a1, "172.31.0.2") and blocked(b1, "172.30.0.2")

    # Egress is masqueraded behind the host's underlay address.
    serve(lab, ext, TCP_SERVER, 9000)
    serve(lab, ext, UDP_SERVER, 9001)
    assert ask(a1, "tcp", EXT, 9000) == f"hello {HOST}"
    assert ask(b1, "udp", EXT, 9001) == f"hello {HOST}"
    # ...and nothing outside may open a connection to a container itself.
    in_ns(ext, "ip", "route", "add", "172.30.0.0/16", "via", HOST)
    assert blocked(ext, "172.30.0.2")

    serve(lab, a1, TCP_SERVER, 80)
    serve(lab, b1, UDP_SERVER, 53)
    # Published: from outside (the client address is kept, as Docker does),
    # from the host to its own address, and to 127.0.0.1 (masqueraded,
    # since a container cannot answer 127.0.0.1).
    assert ask(ext, "tcp", HOST, 8080) == f"hello {EXT}"
    assert ask(h1, "tcp", HOST, 8080) == f"hello {HOST}"
    assert ask(h1, "tcp", "127.0.0.1", 8080) == "hello 172.30.0.1"
    assert ask(ext, "udp", HOST, 5353) == f"hello {EXT}"
    assert ask(h1, "udp", "127.0.0.1", 5353) == "hello 172.31.0.1"
    # Hairpin: a2 reaches a1 through the host's address and gets the
    # answer from there too, so its view of the connection holds.
    assert ask(a2, "tcp", HOST, 8080) == "hello 172.30.0.1"
    # Isolation holds for published ports too (Docker without the proxy).
    assert ask(b1, "tcp", HOST, 8080).startswith("failed")
    # A container's own address is not the host's: nothing is DNAT'ed.
    assert ask(a2, "tcp", "172.30.0.2", 8080).startswith("failed")

    # The table is exactly what was asked for, and re-applying changes nothing.
    table = await agent.call(firewall.read_table)
    chains = [o["chain"] for o in table if "chain" in o]
    assert [(c["name"], c["type"], c["hook"], c["prio"]) for c in chains] == CHAINS
    assert {c["policy"] for c in chains} == {"accept"}
    expected = firewall.ruleset(rules)["nftables"]
    assert len([o for o in table if "rule" in o]) == len(
        [o for o in expected if "rule" in o.get("add", {})]
    )
    await agent.call(firewall.apply, rules)
    assert without_handles(await agent.call(firewall.read_table)) == without_handles(table)
    assert ask(ext, "tcp", HOST, 8080) == f"hello {EXT}"

    # A port that is no longer asked for is gone; the others stay.
    await agent.call(firewall.apply, dataclasses.replace(rules, ports=(DNS,)))
    assert ask(ext, "tcp", HOST, 8080).startswith("failed")
    assert ask(h1, "tcp", "127.0.0.1", 8080).startswith("failed")
    assert ask(ext, "udp", HOST, 5353) == f"hello {EXT}"

    # Bad input is refused before nft runs: the table stays as it was.
    before = await agent.call(firewall.read_table)
    bad = dataclasses.replace(rules, ports=(DNS, dataclasses.replace(WEB, host_port=0)))
    with pytest.raises(ValueError, match=r"ports\[1\]\.host_port"):
        await agent.call(firewall.apply, bad)
    assert await agent.call(firewall.read_table) == before

    await agent.call(firewall.remove)
    await agent.call(firewall.remove)
    assert await agent.call(firewall.read_table) == []


async def test_container_reaches_its_own_published_port(lab: KernelLab):
    h1, ext, agent, a1, a2, b1 = await host_with_bridges(lab)
    await agent.call(firewall.apply, HostRules(bridges=BRIDGES, ports=(WEB,)))
    serve(lab, a1, TCP_SERVER, 80)
    # With br_netfilter (Docker requires it; a new namespace has it on) the
    # DNAT'ed frame is bridged straight back out of the port it came in
    # on, which a bridge only does on a port in hairpin mode; without
    # br_netfilter it is routed and needs no hairpin. Docker sets hairpin
    # on every port of its bridges when the userland proxy is off.
    in_ns(h1, "ip", "link", "set", "va1", "type", "bridge_slave", "hairpin", "on")
    assert ask(a1, "tcp", HOST, 8080) == "hello 172.30.0.1"


async def test_route_localnet_does_not_open_the_hosts_loopback(lab: KernelLab):
    h1, ext, agent, a1, a2, b1 = await host_with_bridges(lab)
    await agent.call(firewall.apply, HostRules(bridges=BRIDGES, ports=(WEB,)))
    serve(lab, h1, TCP_SERVER, 7777)  # a host service on 0.0.0.0, so on 127/8
    # A hostile container routes 127.0.0.2 to the host (CVE-2020-8558):
    # route_localnet would let the host accept it, the input guard drops it.
    in_ns(a1, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
    in_ns(a1, "ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
    in_ns(a1, "ip", "route", "add", "127.0.0.2/32", "via", "172.30.0.1")
    assert ask(a1, "tcp", "127.0.0.2", 7777).startswith("failed")
    assert ask(h1, "tcp", "127.0.0.2", 7777) == "hello 127.0.0.1"
    in_ns(h1, "nft", "flush", "chain", "ip", "vxmesh", "input")
    assert ask(a1, "tcp", "127.0.0.2", 7777) == "hello 172.30.0.2"  # the guard mattered


# --------------------------------------------------------------------------
# bridges: create, repair, list, remove


async def test_ensure_bridge_is_idempotent_and_repairs(lab: KernelLab):
    h1 = lab.ns("h1")
    agent = lab.agent(h1)
    await agent.call(bridge.ensure_bridge, SPEC_A)
    first = link_json(h1, BR_A)
    assert first["linkinfo"]["info_kind"] == "bridge" and "UP" in first["flags"]
    assert in_ns(h1, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    await agent.call(bridge.ensure_bridge, SPEC_A)
    assert link_json(h1, BR_A)["ifindex"] == first["ifindex"]

    # Drift on the bridge is corrected in place.
    in_ns(h1, "ip", "addr", "add", "172.30.0.9/24", "dev", BR_A)
    in_ns(h1, "ip", "link", "set", BR_A, "down", "mtu", "1400")
    await agent.call(bridge.ensure_bridge, SPEC_A)
    link = link_json(h1, BR_A)
    assert link["ifindex"] == first["ifindex"]
    assert link["mtu"] == 1500 and "UP" in link["flags"]
    addrs = [(a["local"], a["prefixlen"]) for a in link_json_addrs(h1, BR_A)]
    assert addrs == [("172.30.0.1", 24)]

    # Something else under the name is replaced by a bridge.
    in_ns(h1, "ip", "link", "add", BR_B, "type", "veth", "peer", "name", "junk")
    assert await agent.call(bridge.list_bridges, "vxb") == [BR_A]
    await agent.call(bridge.ensure_bridge, dataclasses.replace(SPEC_B, mtu=9000))
    assert link_json(h1, BR_B)["linkinfo"]["info_kind"] == "bridge"
    assert link_json(h1, BR_B)["mtu"] == 9000
    assert await agent.call(bridge.list_bridges, "vxb") == [BR_A, BR_B]
    assert await agent.call(bridge.list_bridges, "vxb00000000b") == [BR_B]

    await agent.call(bridge.remove_bridge, BR_B)
    await agent.call(bridge.remove_bridge, BR_B)
    assert link_json(h1, BR_B) is None
    # Only bridges are removed.
    in_ns(h1, "ip", "link", "add", "vxbveth", "type", "veth", "peer", "name", "junk2")
    await agent.call(bridge.remove_bridge, "vxbveth")
    assert link_json(h1, "vxbveth") is not None
    assert await agent.call(bridge.list_bridges, "vxb") == [BR_A]


def link_json_addrs(ns: str, ifname: str) -> list[dict]:
    out = in_ns(ns, "ip", "-4", "-j", "addr", "show", "dev", ifname).stdout
    return json.loads(out)[0]["addr_info"]


def test_bridge_spec_validation():
    for kwargs, field in (
        ({"name": "x" * 16}, "name"),
        ({"subnet": "172.30.0.1/24"}, "subnet"),
        ({"gateway": "172.31.0.1"}, "outside"),
        ({"gateway": "172.30.0.0"}, "network or broadcast"),
        ({"mtu": 60}, "mtu"),
    ):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(SPEC_A, **kwargs)


# --------------------------------------------------------------------------
# ruleset(): pure


def test_ruleset_rebuilds_one_table_in_one_transaction():
    rules = HostRules(bridges=BRIDGES, ports=(WEB, DNS), table="vxtest")
    objects = firewall.ruleset(rules)["nftables"]
    ref = {"table": {"family": "ip", "name": "vxtest"}}
    assert objects[:3] == [{"add": ref}, {"delete": ref}, {"add": ref}]
    added = [o["add"] for o in objects[3:]]
    chains = [o["chain"] for o in added if "chain" in o]
    assert [(c["name"], c["type"], c["hook"], c["prio"]) for c in chains] == CHAINS
    assert all(c["policy"] == "accept" and c["table"] == "vxtest" for c in chains)
    web = {"dnat": {"addr": "172.30.0.2", "port": 80}}
    assert [o["rule"]["chain"] for o in added
            if "rule" in o and web in o["rule"]["expr"]] == ["prerouting", "output"]
    assert firewall.ruleset(rules) == firewall.ruleset(rules)


def test_ruleset_rejects_bad_input_naming_the_field():
    def rules(bridges=BRIDGES, ports=(WEB,), table="vxmesh") -> HostRules:
        return HostRules(bridges=bridges, ports=ports, table=table)

    a, b = BRIDGES
    cases = {
        r"ports\[0\]\.protocol": rules(ports=(dataclasses.replace(WEB, protocol="sctp"),)),
        r"ports\[0\]\.host_port": rules(ports=(dataclasses.replace(WEB, host_port=65536),)),
        r"ports\[0\]\.target_port": rules(ports=(dataclasses.replace(WEB, target_port=0),)),
        r"ports\[0\]\.target_port ": rules(ports=(dataclasses.replace(WEB, target_port=True),)),
        r"ports\[0\]\.target_ip": rules(ports=(dataclasses.replace(WEB, target_ip="172.31.0.2"),)),
        r"ports\[0\]\.target_ip 'x'": rules(ports=(dataclasses.replace(WEB, target_ip="x"),)),
        r"ports\[0\]\.target_ip 172.30.0.1": rules(
            ports=(dataclasses.replace(WEB, target_ip="172.30.0.1"),)),
        r"ports\[0\]\.bridge": rules(ports=(dataclasses.replace(WEB, bridge="nope"),)),
        r"ports\[1\]\.host_port 8080/tcp .* ports\[0\]": rules(
            ports=(WEB, dataclasses.replace(WEB, target_ip="172.30.0.3"))),
        r"bridges\[1\]\.name": rules(bridges=(a, dataclasses.replace(b, name="a/b"))),
        r"bridges\[1\]\.name .* twice": rules(bridges=(a, dataclasses.replace(b, name=BR_A))),
        r"bridges\[1\]\.subnet '10.0.0.0/33'": rules(
            bridges=(a, dataclasses.replace(b, subnet="10.0.0.0/33"))),
        r"bridges\[1\]\.subnet .* overlaps": rules(
            bridges=(a, dataclasses.replace(b, subnet="172.30.0.0/16", gateway="172.30.9.1"))),
        r"bridges\[0\]\.gateway": rules(bridges=(dataclasses.replace(a, gateway="1.2.3.4"), b)),
        r"bridges\[0\]\.icc": rules(bridges=(dataclasses.replace(a, icc="yes"), b)),
        r"table": rules(table="vx mesh"),
    }
    for pattern, bad in cases.items():
        with pytest.raises(ValueError, match=pattern):
            firewall.ruleset(bad)
    # The same port number on the other protocol is a different port.
    firewall.ruleset(rules(ports=(WEB, dataclasses.replace(WEB, protocol="udp"))))
