"""The services' load balancers in this host's containers (agent/kernel/service_lb.py).

Every container attached to a network gets, in its own namespace, the VIPs
of the services on that network with their current backends, as the view's
ServiceVip records say (the leading controller writes them). The table is
rewritten only when what a container should hold changed; after `forget`
(the periodic pass) every container with VIPs has its table written again,
and a container whose networks have no VIP anymore loses its table.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

from agent import names
from agent.host_networks import HostNetworks
from agent.kernel import service_lb
from agent.kernel.netns import netns_exists
from agent.kernel.service_lb import Balanced
from agent.view import View
from proto.network_mode import NetworkMode
from proto.records import ContainerSpec


class ServiceLoadBalancers:
    def __init__(self, host: HostNetworks, view: View):
        self.host = host
        self.view = view
        self._applied: dict[str, frozenset[Balanced]] = {}   # container netns -> what its table holds
        # Namespaces this agent made sure hold no table; not forgotten with the rest:
        # the periodic pass need not run nft in every container that never had a VIP.
        self._clean: set[str] = set()

    async def converge(self, desired: dict[str, ContainerSpec]) -> None:
        wanted: dict[str, frozenset[Balanced]] = {}
        for spec in desired.values():
            if not NetworkMode.of(spec).attaches or not spec.networks:
                continue      # host, none, container:NAME: not a namespace of its own on a network
            netns = names.container_netns(self.host.host, spec.id)
            if not netns_exists(netns):
                continue      # not started yet: the pass after its start programs it
            wanted[netns] = frozenset(Balanced(v.vip, tuple(v.backends), v.service)
                                      for network in spec.networks for v in self.view.vips(network) if v.vip)
        await asyncio.gather(*(self._converge(netns, vips) for netns, vips in wanted.items()))
        for netns in set(self._applied) - set(wanted):
            del self._applied[netns]      # the container went, and its namespace with it
        self._clean &= set(wanted)

    def forget(self) -> None:
        self._applied.clear()

    def made_empty(self, namespaces: Iterable[str]) -> None:
        """Namespaces this agent has just made: a new namespace has no nftables
        table, so a container started without VIPs needs no `nft` run there (an
        nft process, some 20 ms, on every `run`'s path before its report)."""
        self._clean.update(namespaces)

    async def _converge(self, netns: str, vips: frozenset[Balanced]) -> None:
        applied = self._applied.get(netns)
        if applied == vips:
            return
        if applied is None and not vips and netns in self._clean:
            self._applied[netns] = vips
            return
        self._applied.pop(netns, None)     # unknown until this succeeds
        self._clean.discard(netns)
        await service_lb.converge(netns, vips)
        self._applied[netns] = vips
        if not vips:
            self._clean.add(netns)
