"""Port security on every container port (agent option port-security).

Each container interface's bridge-side end accepts only the container's
assigned MAC and addresses (agent/kernel/port_security.py): in the host's
namespace for the gwbridge and local bridges, in each overlay network's
namespace for its br0. The reconcile loop runs this before the containers'
interfaces are built, so a port is guarded from the moment it exists.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

from agent import container_network as plan
from agent import names
from agent.host_networks import HostNetworks
from agent.kernel import port_security
from agent.kernel.netns import list_netns
from agent.kernel.port_security import Port
from agent.local_state import LocalContainer
from proto.records import Network


class PortSecurity:
    def __init__(self, host: HostNetworks, enabled: bool):
        self.host = host
        self.enabled = enabled
        # The ports each namespace's table was last made to guard (None: the host's
        # namespace); a namespace missing here is checked on the next pass.
        self._applied: dict[str | None, frozenset[Port]] = {}

    async def converge(self, records: Iterable[LocalContainer], networks: dict[str, Network]) -> None:
        """Guard the ports of the containers of `records` (prepared: interface names and
        gwbridge addresses chosen), whether they run yet or not; switched off, remove
        every table."""
        if not self.enabled:
            await self._remove_all()
            return
        wanted: dict[str | None, set[Port]] = {None: set()}   # the host's table, always
        for record in records:
            for interface in plan.interfaces(record.spec, networks, record, self.host):
                wanted.setdefault(interface.peer_netns, set()).add(
                    Port(ifname=interface.peer_ifname, mac=interface.mac, addresses=(interface.ip,)))
        # The namespaces' tables are independent: their nft runs overlap.
        await asyncio.gather(*(self._converge(netns, frozenset(ports)) for netns, ports in wanted.items()))
        # An overlay namespace no container needs is on its way out, table and all.
        for netns in set(self._applied) - set(wanted):
            del self._applied[netns]

    def forget(self) -> None:
        self._applied.clear()

    async def _converge(self, netns: str | None, ports: frozenset[Port]) -> None:
        applied = self._applied.get(netns)
        if applied == ports:
            return
        # Known: only the difference is sent. Unknown: the table is read back first.
        self._applied.pop(netns, None)   # unknown until this succeeds
        await port_security.converge(netns, ports, applied)
        self._applied[netns] = ports

    async def _remove_all(self) -> None:
        for netns in (None, *list_netns(names.netns_prefix(self.host.host) + "ov")):
            if netns not in self._applied:
                await port_security.remove(netns)
                self._applied[netns] = frozenset()
