"""Which control-plane ports this host's containers must not reach.

A container that could talk to its agent's API could exec into any
container on the host, and one that could talk to a controller could
register a fake host or rewrite the cluster. Both are plain TCP on the
underlay, reachable through the NAT'ed egress bridge, so the host firewall
drops them (agent/kernel/firewall.py Guard): the agent's API port on the
host itself, and every controller's port, on the host and at the
controller's address.
"""
from __future__ import annotations

import asyncio
import logging
import socket

from agent.kernel import families
from agent.kernel.firewall import Guard
from proto.addresses import HostPort, parse_host_port
from proto.errors import InvalidArgument

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
