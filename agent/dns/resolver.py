"""Answering one DNS query for one asking container.

Names the asker's networks hold (agent/dns/names.py) are answered here, A
records with Docker's TTL; a name held there with no address of the asked
type gets an empty answer, not a forward (it is ours). Everything else goes
to the host's resolvers, as Docker's embedded server does, and their answer
comes back unchanged. DNS messages are dnslib's: no wire format by hand.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from agent.dns.names import NameTable

log = logging.getLogger(__name__)

# Docker's embedded DNS answers with this TTL.
TTL = 600
# The largest answer a plain UDP query takes (RFC 1035); larger ones are sent
# truncated (TC) and the asker retries over TCP.
UDP_LIMIT = 512
# How long a forwarded query waits for the host's resolver before SERVFAIL.
FORWARD_TIMEOUT = 3.0


class Resolver:
    def __init__(self, table: Callable[[], NameTable], upstreams: Iterable[tuple[str, int]]) -> None:
        self._table = table                  # the current table (the reconcile loop replaces it)
        self.upstreams = list(upstreams)     # (address, port) of the host's resolvers

    async def answer(self, data: bytes, networks: Iterable[str], udp: bool = False) -> bytes | None:
        """The reply to `data` for a container on `networks`; None for what is not a query.
        Over `udp`, an answer of ours too large for it is sent truncated."""
        try:
            query = DNSRecord.parse(data)
        except Exception:  # dnslib raises several kinds on garbage; a bad packet gets no reply
            return None
        if query.header.qr or not query.questions:
            return None
        question = query.q
        name = str(question.qname)
        addresses = self._table().lookup(name, list(networks))
        if addresses is not None:
            reply = query.reply()
            if question.qtype in (QTYPE.A, QTYPE.ANY):
                for address in addresses:
                    reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=TTL))
            packed = reply.pack()
            if udp and len(packed) > UDP_LIMIT:
                reply = query.reply()
                reply.header.tc = 1
                packed = reply.pack()
            return packed
        return await self._forward(query, data)

    async def _forward(self, query: DNSRecord, data: bytes) -> bytes:
        for upstream in self.upstreams:
            try:
                return await asyncio.wait_for(_ask(upstream, data), FORWARD_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as err:
                log.debug("resolver %s:%d did not answer: %s", *upstream, err)
        reply = query.reply()
        reply.header.rcode = RCODE.SERVFAIL if self.upstreams else RCODE.NXDOMAIN
        return reply.pack()


async def _ask(upstream: tuple[str, int], data: bytes) -> bytes:
    """One UDP exchange with an upstream resolver (from the agent's own namespace)."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bytes] = loop.create_future()

    class Exchange(asyncio.DatagramProtocol):
        def datagram_received(self, reply: bytes, addr) -> None:
            if not answered.done():
                answered.set_result(reply)

        def error_received(self, exc: Exception) -> None:
            if not answered.done():
                answered.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(Exchange, remote_addr=upstream)
    try:
        transport.sendto(data)
        return await answered
    finally:
        transport.close()


def nameservers(resolv_conf: str, reachable_from_container: bool = False) -> list[str]:
    """The nameservers of a resolv.conf. For a container's own file, without
    the loopback ones: the host's loopback is not the container's (Docker
    drops them too); the resolver forwards from the host, where they work."""
    found = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            if not (reachable_from_container and words[1].startswith("127.")):
                found.append(words[1])
    return found


def parse_upstream(text: str) -> tuple[str, int]:
    """ADDRESS[:PORT] of a resolver."""
    address, _, port = text.partition(":")
    return address, int(port or 53)
