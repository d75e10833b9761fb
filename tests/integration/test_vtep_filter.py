"""The VTEP filter on real namespaces: UDP 4789 only from live VTEPs, never from a container.

    peer (10.97.0.2, fd97::2, and 10.97.0.3, fd97::3) --- host (10.97.0.1, fd97::1)
                                                            |
                                       bridge cbr0 (172.30.0.1, fd30::1)
                                                            |
                                       container (172.30.0.2, fd30::2)

The host listens on UDP 4789 with a plain socket (what the filter guards is
the port, whoever owns it); the peer sends datagrams from its two addresses.
The container's datagrams cross the host's firewall as a container's do
(agent/kernel/firewall.py: forwarded and masqueraded out of the host).
"""
from __future__ import annotations

import json
import os
import select
import sys

import pytest

from agent.kernel import firewall, vtep_filter
from tests.helpers.kernel_lab import KernelLab, in_ns
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

# Prints every datagram's source address, one per line.
RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 4789))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    print(peer[0].removeprefix("::ffff:"), data.decode(), flush=True)
"""

SEND = """
import socket, sys
src, dst, marker = sys.argv[1:4]
family = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind((src, 0))
s.sendto(marker.encode(), (dst, 4789))
"""


def build(lab: KernelLab) -> tuple[str, str]:
    host, peer = lab.ns("host"), lab.ns("peer")
    lab.wire(host, "eth0", "10.97.0.1/24", peer, "eth0", "10.97.0.2/24")
    in_ns(peer, "ip", "addr", "add", "10.97.0.3/24", "dev", "eth0")
    for ns, addresses in ((host, ["fd97::1/64"]), (peer, ["fd97::2/64", "fd97::3/64"])):
        for address in addresses:
            in_ns(ns, "ip", "addr", "add", address, "dev", "eth0", "nodad")
    # Neighbour discovery waits out the link-local address's DAD: settle it
    # first, so a datagram that does not arrive promptly was dropped.
    for src, dst in (("10.97.0.2", "10.97.0.1"), ("10.97.0.3", "10.97.0.1"),
                     ("fd97::2", "fd97::1"), ("fd97::3", "fd97::1")):
        wait_for(lambda: in_ns(peer, "ping", "-c1", "-W1", "-I", src, dst, check=False).returncode == 0,
                 timeout=10, what=f"{src} to reach {dst}")
    return host, peer


class Receiver:
    """A UDP listener (by default the host's on 4789); its output is read unbuffered, so
    select() tells the truth."""

    def __init__(self, lab: KernelLab, host: str, script: str = RECEIVER):
        self.proc = lab.spawn(host, sys.executable, "-u", "-c", script)
        self.pending = b""
        assert self.lines(1) == ["ready"]

    def lines(self, expected: int, timeout: float = 5.0) -> list[str]:
        """The next `expected` lines it prints (fewer if it stays silent for `timeout`)."""
        while self.pending.count(b"\n") < expected:
            ready, _, _ = select.select([self.proc.stdout.fileno()], [], [], timeout)
            if not ready:
                break
            self.pending += os.read(self.proc.stdout.fileno(), 4096)
        *complete, self.pending = self.pending.split(b"\n")
        if len(complete) > expected:
            self.pending = b"\n".join(complete[expected:] + [self.pending])
        return [line.decode() for line in complete[:expected]]


def send_all(peer: str, markers: dict[str, str]) -> None:
    """markers: source address -> marker; each goes to the host's address of its family."""
    for src, marker in markers.items():
        dst = "fd97::1" if ":" in src else "10.97.0.1"
        in_ns(peer, sys.executable, "-c", SEND, src, dst, marker)


def received(rx: Receiver, expected: int) -> set[str]:
    return set(rx.lines(expected))


def read_counter(host: str) -> dict:
    out = in_ns(host, "nft", "-j", "list", "counter", "inet", vtep_filter.TABLE, vtep_filter.COUNTER).stdout
    return next(o["counter"] for o in json.loads(out)["nftables"] if "counter" in o)


def counter(host: str) -> int:
    return read_counter(host)["packets"]


async def test_only_live_vteps_get_through_and_drops_are_counted(lab: KernelLab):
    host, peer = build(lab)
    agent = lab.agent(host)
    rx = Receiver(lab, host)
    await agent.call(vtep_filter.converge, {"10.97.0.2", "fd97::2"})
    send_all(peer, {"10.97.0.3": "stranger4", "fd97::3": "stranger6",
                    "10.97.0.2": "live4", "fd97::2": "live6"})
    # Datagrams arrive in order, so the strangers' would have come first.
    assert received(rx, 2) == {"10.97.0.2 live4", "fd97::2 live6"}
    assert counter(host) == 2
    assert await agent.call(vtep_filter.rejected) == vtep_filter.Rejected(2, read_counter(host)["bytes"])

    # A host joins and another leaves: only the sets change, the counter stays.
    await agent.call(vtep_filter.converge, {"10.97.0.3", "fd97::3"})
    send_all(peer, {"10.97.0.2": "gone4", "10.97.0.3": "joined4", "fd97::3": "joined6"})
    assert received(rx, 2) == {"10.97.0.3 joined4", "fd97::3 joined6"}
    assert counter(host) == 3

    # Level-triggered: a rule removed behind the agent's back is put back.
    listing = in_ns(host, "nft", "-j", "list", "chain", "inet", vtep_filter.TABLE, "input").stdout
    ip6_rule = [o["rule"] for o in json.loads(listing)["nftables"] if "rule" in o][-1]
    in_ns(host, "nft", "delete", "rule", "inet", vtep_filter.TABLE, "input", "handle", str(ip6_rule["handle"]))
    await agent.call(vtep_filter.converge, {"10.97.0.3", "fd97::3"})
    send_all(peer, {"fd97::2": "stranger6-again", "10.97.0.3": "still4"})
    assert received(rx, 1) == {"10.97.0.3 still4"}
    assert counter(host) == 1  # rebuilt: a fresh counter

    # Switched off: no table, everything gets through.
    await agent.call(vtep_filter.remove)
    await agent.call(vtep_filter.remove)  # absent is fine
    assert await agent.call(vtep_filter.rejected) is None
    send_all(peer, {"10.97.0.2": "open4"})
    assert received(rx, 1) == {"10.97.0.2 open4"}


async def test_a_bad_address_changes_nothing(lab: KernelLab):
    host, _ = build(lab)
    agent = lab.agent(host)
    await agent.call(vtep_filter.converge, {"10.97.0.2"})
    before = in_ns(host, "nft", "list", "table", "inet", vtep_filter.TABLE).stdout
    with pytest.raises(ValueError, match="'10.97.0.300'"):
        await agent.call(vtep_filter.converge, {"10.97.0.3", "10.97.0.300"})
    assert in_ns(host, "nft", "list", "table", "inet", vtep_filter.TABLE).stdout == before



# The container's side: the same datagram to several places, then which arrived.
CONTAINER_SEND = """
import socket, sys
for target in sys.argv[1:]:
    address, port, marker = target.split(",")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    socket.socket(family, socket.SOCK_DGRAM).sendto(marker.encode(), (address, int(port)))
"""
# Prints what arrives on 4789 and 4790 of the peer, with the source address.
PEER_RECEIVER = """
import select, socket
socks = []
for port in (4789, 4790):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        data, peer = s.recvfrom(2048)
        print(peer[0], s.getsockname()[1], data.decode(), flush=True)
"""
BRIDGE = "cbr0"


def build_with_container(lab: KernelLab) -> tuple[str, str, str]:
    host, peer = build(lab)
    container = lab.ns("c")
    lab.wire(container, "eth0", "172.30.0.2/24", host, "cport", "")
    in_ns(host, "ip", "link", "add", BRIDGE, "type", "bridge")
    in_ns(host, "ip", "link", "set", "cport", "master", BRIDGE)
    in_ns(host, "ip", "addr", "add", "172.30.0.1/24", "dev", BRIDGE)
    in_ns(host, "ip", "addr", "add", "fd30::1/64", "dev", BRIDGE, "nodad")
    in_ns(host, "ip", "link", "set", BRIDGE, "up")
    in_ns(container, "ip", "addr", "add", "fd30::2/64", "dev", "eth0", "nodad")
    in_ns(container, "ip", "route", "add", "default", "via", "172.30.0.1")
    in_ns(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    return host, peer, container


async def test_vxlan_from_a_container_is_dropped_on_input_and_forward_and_never_masqueraded(lab: KernelLab):
    host, peer, container = build_with_container(lab)
    agent = lab.agent(host)
    # The host's own ruleset: the container's bridge is masqueraded out of the host.
    await agent.call(firewall.apply, firewall.HostRules(
        bridges=(firewall.BridgeRules(BRIDGE, "172.30.0.0/24", "172.30.0.1", icc=True),), ports=()))
    for target in ("172.30.0.1", "10.97.0.2", "fd30::1"):
        wait_for(lambda: in_ns(container, "ping", "-c1", "-W1", target, check=False).returncode == 0,
                 timeout=10, what=f"the container to reach {target}")
    await agent.call(vtep_filter.converge, {"10.97.0.2"}, {BRIDGE})
    on_host = Receiver(lab, host)
    on_peer = Receiver(lab, peer, PEER_RECEIVER)

    def send(*targets: str) -> None:
        in_ns(container, sys.executable, "-c", CONTAINER_SEND, *targets)

    # Forward (to another VTEP) and input (to this host, IPv4 and IPv6): dropped,
    # counted; the same datagram to another port of the peer goes through, masqueraded.
    send("10.97.0.2,4789,forward4", "172.30.0.1,4789,input4", "fd30::1,4789,input6",
         "10.97.0.2,4790,control")
    assert on_peer.lines(1) == ["10.97.0.1 4790 control"]
    assert on_host.lines(1, timeout=1) == []
    assert on_peer.lines(1, timeout=1) == []
    dropped = await agent.call(vtep_filter.from_containers)
    assert dropped.packets == 3
    assert (await agent.call(vtep_filter.rejected)).packets == 0  # not the strangers' counter

    # Bridges come and go: only the set changes, the counters stay.
    await agent.call(vtep_filter.converge, {"10.97.0.2"}, {BRIDGE, "vxb0123456789"})
    send("10.97.0.2,4789,again")
    assert on_peer.lines(1, timeout=1) == []
    assert (await agent.call(vtep_filter.from_containers)).packets == 4

    # Control: without the filter the container's datagram reaches the other
    # VTEP from this host's own address, which that VTEP's filter trusts.
    await agent.call(vtep_filter.remove)
    send("10.97.0.2,4789,injected")
    assert on_peer.lines(1) == ["10.97.0.1 4789 injected"]
    # And the same once the bridge is no longer a container bridge.
    await agent.call(vtep_filter.converge, {"10.97.0.2"}, set())
    send("10.97.0.2,4789,not-a-container-bridge")
    assert on_peer.lines(1) == ["10.97.0.1 4789 not-a-container-bridge"]
