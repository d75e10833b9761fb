"""Probe every peer's VTEP over the underlay, and report which answer.

The controllers decide whether a host stays in the tables from these
reports (controller/liveness.py): an ICMP echo to a VTEP address is
answered by the peer's kernel whether its agent runs or not, so a peer
whose agent restarts still answers, and one whose host or underlay link
is gone does not. Each agent sends one echo per peer per interval from its
own VTEP address; a peer is reachable while a reply came within `timeout`,
unreachable once it has been probed that long without one, and not yet
reported before that. A report goes up the stream when the finding changes
(and again on every new stream, agent/link.py).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from collections.abc import Callable

from proto.records import Reachability

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
# Three missed echoes: a peer is reported silent 3-4 s after it goes, which
# leaves the controller room to withdraw it within 10 s.
TIMEOUT_SECONDS = 3.0

ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    payload = b"vxmesh-p"
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + payload


def echo_reply_ident(packet: bytes) -> int | None:
    """The identifier of an ICMP echo reply in a raw IPv4 packet, else None."""
    if len(packet) < 20:
        return None
    offset = (packet[0] & 0x0F) * 4
    if len(packet) < offset + 8 or packet[offset] != ECHO_REPLY:
        return None
    return struct.unpack("!H", packet[offset + 4:offset + 6])[0]


class Findings:
    """When each peer was first probed and last answered: what a report says (pure)."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS):
        self.timeout = timeout
        self.first_probe: dict[str, float] = {}    # peer name -> when probed first
        self.last_reply: dict[str, float] = {}     # VTEP address -> when it last answered

    def probed(self, name: str, now: float) -> None:
        self.first_probe.setdefault(name, now)

    def answered(self, vtep: str, now: float) -> None:
        self.last_reply[vtep] = now

    def forget_others(self, names: set[str]) -> None:
        for name in set(self.first_probe) - names:
            del self.first_probe[name]

    def report(self, reporter: str, peers: dict[str, str], now: float) -> Reachability:
        reachable, unreachable = [], []
        for name, vtep in sorted(peers.items()):
            if now - self.last_reply.get(vtep, float("-inf")) < self.timeout:
                reachable.append(name)
            elif now - self.first_probe.get(name, now) >= self.timeout:
                unreachable.append(name)
        return Reachability(reporter, reachable, unreachable)


class VtepProbes:
    def __init__(self, host: str, vtep: str, peers: Callable[[], dict[str, str]],
                 report: Callable[[Reachability], None],
                 interval: float = INTERVAL_SECONDS, timeout: float = TIMEOUT_SECONDS):
        self.host = host
        self.vtep = vtep
        self.peers = peers            # name -> VTEP address of every other registered host
        self.send_report = report
        self.interval = interval
        self.findings = Findings(timeout)
        self.ident = os.getpid() & 0xFFFF
        self._last: Reachability | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # A raw socket (the agent runs as root): no reliance on ping_group_range.
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        sock.setblocking(False)
        sock.bind((self.vtep, 0))
        loop.add_reader(sock.fileno(), self._receive, sock, loop)
        seq = 0
        try:
            while True:
                now = loop.time()
                peers = self.peers()
                self.findings.forget_others(set(peers))
                seq = (seq + 1) & 0xFFFF
                packet = echo_request(self.ident, seq)
                for name, vtep in peers.items():
                    self.findings.probed(name, now)
                    try:
                        sock.sendto(packet, (vtep, 0))
                    except OSError as err:  # no route while the underlay is down: a miss
                        log.debug("probe of %s (%s): %s", name, vtep, err)
                self._maybe_report(self.findings.report(self.host, peers, now))
                await asyncio.sleep(self.interval)
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()

    def _receive(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                packet, (source, _) = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            if echo_reply_ident(packet) == self.ident:
                self.findings.answered(source, loop.time())

    def _maybe_report(self, report: Reachability) -> None:
        if report != self._last:
            self._last = report
            if report.unreachable:
                log.warning("peers whose VTEP does not answer: %s", ", ".join(report.unreachable))
            self.send_report(report)
