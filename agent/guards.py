"""Which control-plane ports this host's containers must not reach.

A container that could talk to an agent's API could exec into any
container on that host, one that could talk to a controller could register
a fake host or rewrite the cluster, and one that reaches etcd has the
cluster's state a TLS handshake away. All of it is plain TCP on the
underlay, reachable through the NAT'ed egress bridge, so the host firewall
drops it (agent/kernel/firewall.py Guard): every guarded port on this host
itself (any of its addresses), and each guarded address and port elsewhere.

Two sources, kept together:
  - the agent's own config (`control_plane_guards`), known before the
    controller's first word: its API port, and its controllers' ports on
    the host and at their addresses;
  - the view (`cluster_guards`), which follows the cluster as hosts and
    controllers join and leave: every host's agent API (at its API address
    and at its VTEP) from the Host records, and every controller serving now
    with the etcd cluster it uses, client and peer URLs, from the records
    the controllers write of themselves (controller/presence.py).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable

from agent.kernel import families
from agent.kernel.firewall import Guard
from proto.addresses import HostPort, parse_host_port
from proto.errors import InvalidArgument
from proto.records import ControllerInfo, Host

log = logging.getLogger(__name__)


async def control_plane_guards(api: str, controllers: list[str]) -> tuple[Guard, ...]:
    guards = {Guard(port=_host_port(api, "agent api").port)}
    for controller in controllers:
        address = _host_port(controller, "controller", unix_ok=True)
        if address.unix:
            continue  # a local socket: no container reaches it over the network
        guards.add(Guard(port=address.port))
        for ip in await _addresses(address):
            guards.add(Guard(port=address.port, address=ip))
    return tuple(sorted(guards, key=lambda g: (g.address, g.port)))


def cluster_guards(hosts: Iterable[Host], controllers: Iterable[ControllerInfo]) -> set[Guard]:
    """Every agent's API and every controller's and etcd member's port, at their addresses.

    Only addresses of the families containers' traffic has (the firewall's)
    need a guard; an entry that is not an address:port is left out, as no
    controller writes one."""
    targets: list[tuple[str, int]] = []
    for host in hosts:
        api = _parsed(host.api)
        if api is not None:
            # Its API address, and its VTEP: an API on 0.0.0.0 answers there too.
            targets += [(api.host, api.port), (host.vtep, api.port)]
    for controller in controllers:
        for text in (*controller.listen, *controller.etcd_client, *controller.etcd_peer):
            target = _parsed(text)
            if target is not None:
                targets.append((target.host, target.port))
    versions = {f.version for f in families.overlay()}
    guards = set()
    for address, port in targets:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue  # a name: not something the controller announces
        if ip.version in versions and not ip.is_unspecified:
            guards.add(Guard(port=port, address=str(ip)))
    return guards


def _parsed(text: str) -> HostPort | None:
    try:
        return parse_host_port(text)
    except InvalidArgument:
        return None


def _host_port(text: str, what: str, unix_ok: bool = False) -> HostPort:
    try:
        return parse_host_port(text, f"{what} address", unix_ok=unix_ok)
    except InvalidArgument as err:
        raise ValueError(f"{what} address {text!r} is not HOST:PORT ({err})") from None


async def _addresses(address: HostPort) -> list[str]:
    """The controller's addresses in the families containers' traffic has (the
    firewall's); another family's address needs no guard, no container can send to it."""
    wanted = families.overlay()
    literal = address.address
    if literal is not None:
        return [str(literal)] if literal.version in {f.version for f in wanted} else []
    found: set[str] = set()
    for family in wanted:
        try:
            infos = await asyncio.to_thread(socket.getaddrinfo, address.host, None, family.af,
                                            socket.SOCK_STREAM)
        except socket.gaierror as err:
            # Still guarded on this host; at the remote address only once it resolves (next start).
            log.warning("controller %s does not resolve (%s): containers are kept off its port "
                        "on this host only", address.host, err)
            continue
        found.update(info[4][0] for info in infos)
    return sorted(found)
