"""This controller's record of itself in etcd, for the agents' guards.

Containers must reach no control-plane port of the cluster: not any
controller's, not etcd's. Agents know the controllers in their own config,
but not every controller sharing the etcd cluster, nor the cluster's
members. So each controller announces itself (controllers/<name>, a
proto.records.ControllerInfo every agent receives): the TCP addresses it
serves gRPC on, and the client and peer URLs of every etcd member, as etcd's
member list gives them. The record is bound to a lease this loop renews, so
it goes when the controller does; the member list is read again every
REFRESH_SECONDS and the record rewritten when it changed (members added or
removed). Names are resolved here, once, so agents get addresses.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from controller.etcd import Etcd, EtcdError
from controller.store.controllers import Controllers
from proto.addresses import HostPort, parse_host_port
from proto.errors import UserError
from proto.records import ControllerInfo

log = logging.getLogger(__name__)

REFRESH_SECONDS = 30.0
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380


class Presence:
    def __init__(self, controllers: Controllers, etcd: Etcd, name: str, listen: list[str],
                 etcd_endpoints: list[str], ttl: int):
        self.controllers = controllers
        self.etcd = etcd
        self.name = name
        self.listen = listen
        self.etcd_endpoints = etcd_endpoints  # what this controller was given, if the member list fails
        self.ttl = ttl
        self.lease = 0

    async def run(self) -> None:
        """Announce, renew and refresh until cancelled; etcd trouble is retried."""
        refreshed = -REFRESH_SECONDS
        loop = asyncio.get_running_loop()
        announced: ControllerInfo | None = None
        while True:
            try:
                if self.lease and not await self.controllers.keep_alive(self.lease):
                    self.lease, announced = 0, None   # expired: announce again
                if loop.time() - refreshed >= REFRESH_SECONDS or announced is None:
                    record = await self.record()
                    refreshed = loop.time()
                    if not self.lease:
                        self.lease = await self.controllers.announce(record, self.ttl)
                        log.info("announced controller %s: listen %s, etcd clients %s, peers %s", record.name,
                                 record.listen, record.etcd_client, record.etcd_peer)
                    elif record != announced:
                        await self.controllers.update(record, self.lease)
                    announced = record
            except (EtcdError, UserError) as err:
                log.warning("cannot announce controller %s in etcd (retrying): %s", self.name, err)
            await asyncio.sleep(max(self.ttl / 3, 0.5))

    async def withdraw(self) -> None:
        """The controller stops: its record goes now rather than when the lease runs out."""
        if self.lease:
            try:
                await self.controllers.withdraw(self.lease)
            except (EtcdError, UserError) as err:
                log.warning("cannot withdraw controller %s from etcd: %s", self.name, err)

    async def record(self) -> ControllerInfo:
        try:
            members = await self.etcd.members()
            clients = [url for m in members for url in m.client_urls]
            peers = [url for m in members for url in m.peer_urls]
        except EtcdError as err:
            log.warning("cannot read etcd's member list (%s): announcing the endpoints given", err)
            clients, peers = self.etcd_endpoints, []
        return ControllerInfo(
            name=self.name,
            listen=await _addresses([parse_host_port(a, "listen address", unix_ok=True) for a in self.listen]),
            etcd_client=await _addresses(_url_host_port(u, ETCD_CLIENT_PORT) for u in clients),
            etcd_peer=await _addresses(_url_host_port(u, ETCD_PEER_PORT) for u in peers))


def _url_host_port(url: str, default_port: int) -> HostPort:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return HostPort(parts.hostname or "", parts.port or default_port)


async def _addresses(targets: Iterable[HostPort]) -> list[str]:
    """Each TCP target as address:port: names resolved, an unspecified address as
    every address of this host, unix sockets left out (no container reaches them)."""
    found: set[str] = set()
    for target in targets:
        if target.unix or not target.host:
            continue
        literal = target.address
        if literal is None:
            try:
                infos = await asyncio.to_thread(socket.getaddrinfo, target.host, target.port,
                                                type=socket.SOCK_STREAM)
            except socket.gaierror as err:
                log.warning("%s does not resolve (%s): not announced", target.host, err)
                continue
            hosts = [info[4][0] for info in infos]
        elif literal.is_unspecified:
            hosts = [a for a in await asyncio.to_thread(_local_addresses)
                     if ipaddress.ip_address(a).version == literal.version or literal.version == 6]
        else:
            hosts = [str(literal)]
        found.update(str(HostPort(str(ipaddress.ip_address(h.partition("%")[0])), target.port)) for h in hosts)
    return sorted(found)


def _local_addresses() -> list[str]:
    """Every address of this host (what a socket bound to 0.0.0.0 or :: answers on)."""
    from pyroute2 import IPRoute  # only for a wildcard listen address

    with IPRoute() as ipr:
        return [a.get("IFA_ADDRESS") for a in ipr.addr("dump") if a.get("IFA_ADDRESS")]
