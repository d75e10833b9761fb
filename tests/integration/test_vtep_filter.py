"""The VTEP filter on real namespaces: UDP 4789 only from live VTEPs, IPv4 and IPv6.

    peer (10.97.0.2, fd97::2, and 10.97.0.3, fd97::3) --- host (10.97.0.1, fd97::1)

The host listens on UDP 4789 with a plain socket (what the filter guards is
the port, whoever owns it); the peer sends datagrams from its two addresses.
"""
from __future__ import annotations

import json
import os
import select
import sys

import pytest

from agent.kernel import vtep_filter
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
    """The host's UDP 4789 listener; its output is read unbuffered, so select() tells the truth."""

    def __init__(self, lab: KernelLab, host: str):
        self.proc = lab.spawn(host, sys.executable, "-u", "-c", RECEIVER)
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

