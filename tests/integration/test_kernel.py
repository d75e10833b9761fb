"""Integration tests for the agent's kernel layer (agent/kernel, agent/names),
on bare "machines" from tests/helpers/kernel_lab.py."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import pytest

from agent import names
from agent.kernel import firewall, gwbridge, netns, overlay, table, veth
from tests.helpers.kernel_lab import (
    VNI,
    KernelLab,
    attach_container,
    blocked,
    full_id,
    in_ns,
    link_json,
    mac_for,
    one_host_with_overlay,
    pings,
    sh,
)

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------
# 1. two hosts, one overlay, containers ping across


async def test_containers_on_two_hosts_reach_each_other(lab: KernelLab):
    h1, h2 = lab.ns("h1"), lab.ns("h2")
    lab.wire(h1, "u1", "10.99.0.1/24", h2, "u2", "10.99.0.2/24")
    a1, a2 = lab.agent(h1), lab.agent(h2)
    hosts = {h1: ("10.99.0.1", "10.77.0.2", a1), h2: ("10.99.0.2", "10.77.0.3", a2)}

    mtu = await a1.call(overlay.underlay_mtu, "10.99.0.1") - 50
    assert mtu == 1450
    containers = {}
    for host, (vtep, ip, agent) in hosts.items():
        spec = overlay.OverlaySpec(
            vni=VNI, gateway="10.77.0.1", prefixlen=24, vtep_ip=vtep, mtu=mtu
        )
        await agent.call(overlay.ensure_overlay, names.overlay_netns(host, VNI), spec)
        containers[host] = await attach_container(
            agent, host, f"cafe{host[-1]}0000", ip, 24, mtu
        )

    ov1 = names.overlay_netns(h1, VNI)
    vx = link_json(ov1, "vx4200")
    data = vx["linkinfo"]["info_data"]
    assert (data["id"], data["local"], data["port"]) == (VNI, "10.99.0.1", 4789)
    assert data["learning"] is False and data["proxy"] is True
    assert "group" not in data and "remote" not in data
    assert vx["master"] == "br0" and vx["mtu"] == mtu and "UP" in vx["flags"]
    assert "link_netnsid" in vx  # its UDP socket lives in the host namespace
    assert "4789" in in_ns(h1, "ss", "-uanH", "sport = :4789").stdout
    eth0 = link_json(containers[h1].container_netns, "eth0")
    assert eth0["mtu"] == 1450 and eth0["address"] == mac_for("10.77.0.2")

    c1, c2 = containers[h1].container_netns, containers[h2].container_netns
    assert blocked(c1, "10.77.0.3"), "reachable before any table entry"

    for host, (_, _, agent) in hosts.items():
        (other,) = [h for h in hosts if h != host]
        o_vtep, o_ip, _ = hosts[other]
        errors = await agent.call(
            table.program, names.overlay_netns(host, VNI), VNI,
            {mac_for(o_ip): o_vtep}, [], {o_ip: mac_for(o_ip)}, [],
        )
        assert errors == []

    assert pings(c1, "10.77.0.3")
    assert pings(c2, "10.77.0.2")
    # A full-size DF packet fits: the MTU leaves room for the VXLAN header.
    assert pings(c1, "10.77.0.3", "-M", "do", "-s", str(mtu - 28))
    assert not pings(c1, "10.77.0.3", "-M", "do", "-s", str(mtu - 27))

    assert await a1.call(table.read_fdb, ov1, VNI) == {
        mac_for("10.77.0.3"): "10.99.0.2"
    }
    assert await a1.call(table.read_neighbours, ov1, VNI) == {
        "10.77.0.3": mac_for("10.77.0.3")
    }

    errors = await a1.call(
        table.program, ov1, VNI, {}, [mac_for("10.77.0.3")], {}, ["10.77.0.3"]
    )
    assert errors == []
    assert await a1.call(table.read_fdb, ov1, VNI) == {}
    assert await a1.call(table.read_neighbours, ov1, VNI) == {}
    # The neighbour cache in the container still knows c2's MAC, so this
    # fails because the VXLAN device no longer knows where to send it.
    assert blocked(c1, "10.77.0.3")


# --------------------------------------------------------------------------
# 2. ensure semantics: repeat, drift and crash leftovers


async def test_ensure_overlay_is_idempotent_and_repairs_leftovers(lab: KernelLab):
    h1 = lab.ns("h1")
    lab.wire(h1, "u1", "10.99.0.1/24", lab.ns("sw"), "u1p", "")
    in_ns(h1, "ip", "addr", "add", "10.99.0.11/24", "dev", "u1")
    agent = lab.agent(h1)
    ov = names.overlay_netns(h1, VNI)
    spec = overlay.OverlaySpec(
        vni=VNI, gateway="10.77.0.1", prefixlen=24, vtep_ip="10.99.0.1", mtu=1450
    )

    await agent.call(overlay.ensure_overlay, ov, spec)
    br, vx = link_json(ov, "br0"), link_json(ov, "vx4200")
    await agent.call(overlay.ensure_overlay, ov, spec)
    assert link_json(ov, "br0")["ifindex"] == br["ifindex"]
    assert link_json(ov, "vx4200")["ifindex"] == vx["ifindex"]
    addrs = json.loads(in_ns(ov, "ip", "-4", "-j", "addr", "show", "br0").stdout)
    assert [(a["local"], a["prefixlen"]) for a in addrs[0]["addr_info"]] == [
        ("10.77.0.1", 24)
    ]

    # The VTEP IP changed: the device is rebuilt with the new local address.
    moved = overlay.OverlaySpec(
        vni=VNI, gateway="10.77.0.1", prefixlen=24, vtep_ip="10.99.0.11", mtu=1450
    )
    await agent.call(overlay.ensure_overlay, ov, moved)
    vx2 = link_json(ov, "vx4200")
    assert vx2["linkinfo"]["info_data"]["local"] == "10.99.0.11"
    assert vx2["master"] == "br0"
    assert link_json(ov, "br0")["ifindex"] == br["ifindex"]

    # Crash leftover: the namespace is gone and a vx4200 holding VNI 4200
    # on the host's UDP socket is stranded in the host namespace.
    await agent.call(overlay.remove_overlay, ov)
    assert ov not in netns.list_netns(names.netns_prefix(h1))
    # Synchronously gone, not lingering in a dying namespace.
    assert "4789" not in in_ns(h1, "ss", "-uanH", "sport = :4789").stdout
    in_ns(h1, "ip", "link", "add", "vx4200", "type", "vxlan", "id", str(VNI),
          "local", "10.99.0.1", "dstport", "4789", "nolearning")
    await agent.call(overlay.ensure_overlay, ov, spec)
    assert link_json(h1, "vx4200") is None
    assert link_json(ov, "vx4200")["linkinfo"]["info_data"]["local"] == "10.99.0.1"

    # A half-built namespace: the mount point exists but nothing is mounted.
    await agent.call(overlay.remove_overlay, ov)
    open(netns.netns_path(ov), "w").close()
    await agent.call(overlay.ensure_overlay, ov, spec)
    assert link_json(ov, "vx4200")["master"] == "br0"

    # A vx4200 created inside the overlay namespace has its socket there,
    # off the underlay: it must be replaced, not accepted.
    in_ns(ov, "ip", "link", "del", "vx4200")
    in_ns(ov, "ip", "link", "add", "vx4200", "type", "vxlan", "id", str(VNI),
          "local", "10.99.0.1", "dstport", "4789", "nolearning", "proxy")
    assert "link_netnsid" not in link_json(ov, "vx4200")
    await agent.call(overlay.ensure_overlay, ov, spec)
    assert "link_netnsid" in link_json(ov, "vx4200")

    with pytest.raises(overlay.VtepNotConfigured, match="10.99.0.99"):
        await agent.call(overlay.underlay_mtu, "10.99.0.99")

    await agent.call(overlay.remove_overlay, ov)
    await agent.call(overlay.remove_overlay, ov)
    assert not os.path.exists(netns.netns_path(ov))


async def test_ensure_interface_is_idempotent_and_repairs_leftovers(lab: KernelLab):
    h1, agent, ov, spec = await one_host_with_overlay(lab)
    iface = await attach_container(agent, h1, "beef00000001", "10.77.0.5", 24, 1450)
    cns, peer = iface.container_netns, iface.peer_ifname
    assert pings(cns, "10.77.0.1")
    before = link_json(cns, "eth0")["ifindex"], link_json(ov, peer)["ifindex"]
    await agent.call(veth.ensure_interface, iface)
    assert (link_json(cns, "eth0")["ifindex"], link_json(ov, peer)["ifindex"]) == before

    # Leftover: an eth0 in the container paired with something else.
    await agent.call(veth.remove_interface, iface)
    assert link_json(cns, "eth0") is None and link_json(ov, peer) is None
    in_ns(cns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "junk0")
    in_ns(ov, "ip", "link", "add", peer, "type", "veth", "peer", "name", "junk1")
    await agent.call(veth.ensure_interface, iface)
    assert link_json(cns, "junk0") is None and link_json(ov, "junk1") is None
    assert link_json(ov, peer)["master"] == "br0"
    assert pings(cns, "10.77.0.1")

    # Drift on an intact pair is corrected in place.
    in_ns(cns, "ip", "addr", "flush", "dev", "eth0")
    in_ns(ov, "ip", "link", "set", peer, "nomaster")
    index = link_json(cns, "eth0")["ifindex"]
    await agent.call(veth.ensure_interface, iface)
    assert link_json(cns, "eth0")["ifindex"] == index
    assert pings(cns, "10.77.0.1")

    await agent.call(veth.remove_interface, iface)
    await agent.call(veth.remove_interface, iface)
    assert link_json(cns, "eth0") is None
    missing = dataclasses.replace(iface, container_netns=f"{lab.tag}-none")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        await agent.call(veth.ensure_interface, missing)


# --------------------------------------------------------------------------
# 3. gwbridge (+ its firewall rules): egress with masquerade, isolation, no way in


UDP_SINK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
s.settimeout(10)
print("ready", flush=True)
print(s.recvfrom(64)[1][0], flush=True)
"""
UDP_SEND = """
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("10.98.0.2", 9999))
"""


async def test_gwbridge_masquerades_egress_and_isolates_containers(lab: KernelLab):
    h1, ext = lab.ns("h1"), lab.ns("ext")
    lab.wire(h1, "u1", "10.98.0.1/24", ext, "x1", "10.98.0.2/24")
    agent = lab.agent(h1)
    spec = gwbridge.GwBridgeSpec()
    rules = firewall.HostRules(bridges=(gwbridge.firewall_rules(spec),), ports=())
    for _ in range(2):
        await agent.call(gwbridge.ensure_gwbridge, spec)
        await agent.call(firewall.apply, rules)
    assert in_ns(h1, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"

    def gw_iface(cid: str, ip: str, isolated: bool) -> veth.Interface:
        cid = full_id(cid)
        return veth.Interface(
            container_netns=names.container_netns(h1, cid),
            ifname="eth1",
            peer_netns=None,
            peer_ifname=names.gw_veth(cid),
            bridge=names.GWBRIDGE,
            address=f"{ip}/16",
            mac=mac_for(ip),
            mtu=1500,
            default_gateway="172.18.0.1",
            isolated=isolated,
        )

    c1 = gw_iface("feed01000000", "172.18.0.2", True)
    c2 = gw_iface("feed02000000", "172.18.0.3", False)
    for iface in (c1, c2):
        await agent.call(netns.ensure_netns, iface.container_netns)
        await agent.call(veth.ensure_interface, iface)
    cns1 = c1.container_netns

    routes = json.loads(in_ns(cns1, "ip", "-j", "route", "show", "default").stdout)
    assert [(r["gateway"], r["dev"]) for r in routes] == [("172.18.0.1", "eth1")]
    assert link_json(h1, c1.peer_ifname)["linkinfo"]["info_slave_data"]["isolated"]

    # Masquerade: ext has no route to 172.18/16 and sees the host's address.
    sink = lab.spawn(ext, sys.executable, "-c", UDP_SINK)
    assert sink.stdout.readline().strip() == "ready"
    in_ns(cns1, sys.executable, "-c", UDP_SEND)
    assert sink.stdout.readline().strip() == "10.98.0.1"
    assert pings(cns1, "10.98.0.2")

    listed = json.loads(in_ns(h1, "nft", "-j", "list", "table", "ip", "vxmesh").stdout)
    egress = {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}},
                        "right": "vxm_gwbridge"}}
    masquerade = [
        o["rule"]["expr"] for o in listed["nftables"]
        if "rule" in o and o["rule"]["chain"] == "postrouting"
        and egress in o["rule"]["expr"]
    ]
    assert masquerade == [[
        {"match": {"op": "==",
                   "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": {"prefix": {"addr": "172.18.0.0", "len": 16}}}},
        egress,
        {"masquerade": None},
    ]]
    assert await agent.call(firewall.read_table) == [
        o for o in listed["nftables"] if "chain" in o or "rule" in o
    ]

    # Port isolation: only a pair of ports that are both isolated is cut
    # off. With br_netfilter, bridged frames also traverse the forward
    # chain, which drops them too (Docker's icc=false); switch that off
    # here to see the isolation flag alone.
    brnf = "net.bridge.bridge-nf-call-iptables"
    has_brnf = in_ns(h1, "sysctl", "-qw", f"{brnf}=0", check=False).returncode == 0
    assert pings(cns1, "172.18.0.3")
    await agent.call(veth.ensure_interface, gw_iface("feed02000000", "172.18.0.3", True))
    assert blocked(cns1, "172.18.0.3")
    if has_brnf:
        await agent.call(veth.ensure_interface, c2)
        assert pings(cns1, "172.18.0.3")
        in_ns(h1, "sysctl", "-qw", f"{brnf}=1")
        assert blocked(cns1, "172.18.0.3")

    # Nothing from outside may open connections to a container.
    in_ns(ext, "ip", "route", "add", "172.18.0.0/16", "via", "10.98.0.1")
    assert blocked(ext, "172.18.0.2")

    await agent.call(gwbridge.remove_gwbridge, spec)
    await agent.call(gwbridge.remove_gwbridge, spec)
    assert link_json(h1, "vxm_gwbridge") is None
    assert "vxmesh" in in_ns(h1, "nft", "list", "tables").stdout  # not its table
    await agent.call(firewall.remove)
    await agent.call(firewall.remove)
    assert "vxmesh" not in in_ns(h1, "nft", "list", "tables").stdout
    assert await agent.call(firewall.read_table) == []


# --------------------------------------------------------------------------
# 4. a large table in batches


async def test_program_large_table_and_per_entry_errors(lab: KernelLab):
    h1, agent, ov, spec = await one_host_with_overlay(lab, prefixlen=16)

    n = 2000
    ips = [f"10.77.{1 + i // 250}.{1 + i % 250}" for i in range(n)]
    fdb = {mac_for(ip): f"10.99.{i % 7}.{2 + i % 200}" for i, ip in enumerate(ips)}
    neigh = {ip: mac_for(ip) for ip in ips}

    started = time.perf_counter()
    errors = await agent.call(table.program, ov, VNI, fdb, [], neigh, [])
    elapsed = time.perf_counter() - started
    assert errors == []
    print(f"\nprogram(): {2 * n} entries in {elapsed:.3f}s = "
          f"{2 * n / elapsed:,.0f} entries/s (incl. process round trip)")
    assert await agent.call(table.read_fdb, ov, VNI) == fdb
    assert await agent.call(table.read_neighbours, ov, VNI) == neigh

    # Replace half the VTEPs, delete a quarter, and include bad entries:
    # each failure is reported by itself and the rest still applies.
    moved = {mac: "10.99.9.9" for mac in list(fdb)[: n // 2]}
    gone_ips = ips[-n // 4:]
    gone_macs = [mac_for(ip) for ip in gone_ips]
    errors = await agent.call(
        table.program, ov, VNI,
        {**moved, "ff:ff:ff:ff:ff:ff": "10.99.0.2", "not-a-mac": "10.99.0.2"},
        gone_macs + ["02:00:00:00:00:99"],  # the last one never existed
        {"10.77.200.1": "zz"},
        gone_ips,
    )
    assert sorted(errors) == sorted([
        "fdb put ff:ff:ff:ff:ff:ff -> 10.99.0.2: Operation not supported (errno 95)",
        "fdb put not-a-mac -> 10.99.0.2: 'not-a-mac' is not a MAC address",
        "neigh put 10.77.200.1 -> zz: 'zz' is not a MAC address",
    ])
    expected_fdb = {**fdb, **moved}
    for mac in gone_macs:
        del expected_fdb[mac]
    expected_neigh = {ip: mac for ip, mac in neigh.items() if ip not in gone_ips}
    assert await agent.call(table.read_fdb, ov, VNI) == expected_fdb
    assert await agent.call(table.read_neighbours, ov, VNI) == expected_neigh

    errors = await agent.call(
        table.program, ov, VNI, {}, list(fdb), {}, list(neigh)
    )
    assert errors == []
    assert await agent.call(table.read_fdb, ov, VNI) == {}
    assert await agent.call(table.read_neighbours, ov, VNI) == {}

    with pytest.raises(LookupError, match="vx4201"):
        await agent.call(table.read_fdb, ov, 4201)


# --------------------------------------------------------------------------
# the agent must share the mount namespace that /run/netns propagates in


CREATE_NETNS = """
import asyncio, sys
from agent.kernel.netns import ensure_netns
asyncio.run(ensure_netns(sys.argv[1]))
"""


def test_ensure_netns_refuses_a_slave_mount_namespace(lab: KernelLab):
    h1 = lab.ns("h1")
    name = f"{lab.tag}-made-inside"
    # `ip netns exec` gives its command a private (slave) mount namespace:
    # a namespace mounted in there would exist for that process only.
    proc = in_ns(h1, sys.executable, "-c", CREATE_NETNS, name, check=False)
    assert proc.returncode != 0
    assert "slave mount" in proc.stderr and "nsenter" in proc.stderr
    assert not os.path.lexists(netns.netns_path(name))
    # Entering just the network namespace works, and others can use it.
    sh("nsenter", f"--net={netns.netns_path(h1)}", sys.executable, "-c",
       CREATE_NETNS, name)
    assert in_ns(name, "ip", "-j", "link", "show", "lo").returncode == 0
