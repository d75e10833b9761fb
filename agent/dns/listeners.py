"""The embedded DNS inside each container's namespace, at Docker's 127.0.0.11.

For each running container with a namespace of its own, the agent opens a
UDP and a TCP socket inside that namespace on 127.0.0.11 and free ports,
and nftables rules there send what the container asks of 127.0.0.11:53 to
them (port 53 stays free for the container's own use, as in Docker; TCP is
what resolvers fall back to when an answer is truncated). The
socket is served by the agent's event loop: the socket a query came in on
says which container asked, so the answer can hold only the names of the
networks that container is on. Containers sharing a namespace
(`--network container:NAME`) share NAME's listener.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable

from agent.dns.resolver import Resolver
from agent.kernel import nft
from agent.kernel.netns import socket_in

log = logging.getLogger(__name__)

ADDRESS = "127.0.0.11"
DNS_PORT = 53
TABLE = "vxmesh_dns"


class _Server(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver, networks: Callable[[], list[str]]) -> None:
        self.resolver = resolver
        self.networks = networks
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        asyncio.get_running_loop().create_task(self._reply(data, addr))

    async def _reply(self, data: bytes, addr) -> None:
        try:
            reply = await self.resolver.answer(data, self.networks(), udp=True)
        except Exception:
            log.exception("embedded DNS: query from %s failed", addr)
            return
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


def dnat_rules(udp_port: int, tcp_port: int) -> str:
    """The namespace's table: queries to 127.0.0.11:53 go to the listeners' ports."""
    return (f"table ip {TABLE} {{\n"
            f"  chain output {{ type nat hook output priority -100; policy accept;\n"
            f"    ip daddr {ADDRESS} udp dport {DNS_PORT} dnat to {ADDRESS}:{udp_port}\n"
            f"    ip daddr {ADDRESS} tcp dport {DNS_PORT} dnat to {ADDRESS}:{tcp_port}\n  }}\n}}\n")


async def _serve_tcp(resolver: Resolver, networks: Callable[[], list[str]],
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """DNS over TCP: each message and reply prefixed with its 2-byte length."""
    try:
        while True:
            size = int.from_bytes(await reader.readexactly(2), "big")
            reply = await resolver.answer(await reader.readexactly(size), networks())
            if reply is None:
                break
            writer.write(len(reply).to_bytes(2, "big") + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class Listeners:
    """One listener per container namespace, by container id."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        # container id -> (netns, the UDP transport, the TCP server)
        self._served: dict[str, tuple[str, asyncio.DatagramTransport, asyncio.Server]] = {}

    def serving(self, container_id: str) -> bool:
        return container_id in self._served

    async def serve(self, container_id: str, netns: str, networks: Callable[[], list[str]]) -> None:
        """Listen in `netns` for this container (again, if the namespace is new)."""
        current = self._served.get(container_id)
        if current is not None and current[0] == netns and not current[1].is_closing():
            return
        self.close(container_id)
        udp = await asyncio.to_thread(socket_in, netns, ADDRESS, socket.SOCK_DGRAM)
        tcp = await asyncio.to_thread(socket_in, netns, ADDRESS, socket.SOCK_STREAM)
        try:
            ports = udp.getsockname()[1], tcp.getsockname()[1]
            # Replace the table whole: delete-then-add in one transaction.
            await nft.run_nft(["-f", "-"], (f"table ip {TABLE}\ndelete table ip {TABLE}\n"
                                            + dnat_rules(*ports)).encode(), netns)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Server(self.resolver, networks), sock=udp)
            server = await asyncio.start_server(functools.partial(_serve_tcp, self.resolver, networks), sock=tcp)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        self._served[container_id] = (netns, transport, server)
        log.info("embedded DNS for %s in %s on %s:%d/udp, %d/tcp", container_id[:12], netns, ADDRESS, *ports)

    def close(self, container_id: str) -> None:
        """Stop serving a container (its namespace, and the rule in it, go with it)."""
        served = self._served.pop(container_id, None)
        if served is not None:
            served[1].close()
            served[2].close()

    def close_all_but(self, keep: set[str]) -> None:
        for container_id in [c for c in self._served if c not in keep]:
            self.close(container_id)
