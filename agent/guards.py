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
import ipaddress
import logging
import socket

from agent.kernel.firewall import Guard

log = logging.getLogger(__name__)


async def control_plane_guards(api: str, controllers: list[str]) -> tuple[Guard, ...]:
    guards = {Guard(port=_port(api, "agent api"))}
    for controller in controllers:
        if controller.startswith("unix://"):
            continue  # a local socket: no container reaches it over the network
        host, _, port = controller.rpartition(":")
        number = _port(controller, "controller")
        guards.add(Guard(port=number))
        for address in await _ipv4_addresses(host.strip("[]")):
            guards.add(Guard(port=number, address=address))
    return tuple(sorted(guards, key=lambda g: (g.address, g.port)))


def _port(address: str, what: str) -> int:
    _, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what} address {address!r} is not HOST:PORT")
    return int(port)


async def _ipv4_addresses(host: str) -> list[str]:
    try:
        return [str(ipaddress.IPv4Address(host))]
    except ValueError:
        pass
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, host, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as err:
        # Still guarded on this host; at the remote address only once it resolves (next start).
        log.warning("controller %s does not resolve (%s): containers are kept off its port "
                    "on this host only", host, err)
        return []
    return sorted({info[4][0] for info in infos})
