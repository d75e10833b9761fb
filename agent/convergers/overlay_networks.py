"""Overlay networks on this host: per network a namespace holding br0 and vx<vni>."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from agent import names
from agent.host_networks import HostNetworks
from agent.kernel.netns import list_netns
from agent.kernel.overlay import OverlaySpec, ensure_overlay, remove_overlay
from proto.addresses import prefixlen
from proto.records import Network

log = logging.getLogger(__name__)


class OverlayNetworks:
    def __init__(self, host: HostNetworks, vtep_ip: str):
        self.host = host
        self.vtep_ip = vtep_ip
        # The spec each namespace was last built with. Re-checking every overlay
        # on each event pass cost netlink round trips per network; the periodic
        # pass forgets this and re-checks them all, healing drift.
        self._built: dict[str, OverlaySpec] = {}

    async def converge(self, networks: Sequence[Network], began: float) -> None:
        wanted = set()
        for network in networks:
            netns = names.overlay_netns(self.host.host, network.vni)
            wanted.add(netns)
            spec = OverlaySpec(vni=network.vni, gateway=network.gateway, prefixlen=prefixlen(network.subnet),
                               vtep_ip=self.vtep_ip, mtu=self.host.overlay_mtu)
            if self._built.get(netns) == spec:
                continue
            await ensure_overlay(netns, spec)
            self._built[netns] = spec
        for netns in list_netns(names.netns_prefix(self.host.host) + "ov"):
            if netns not in wanted:
                log.info("removing overlay namespace %s: no container of this host uses it", netns)
                self._built.pop(netns, None)
                await remove_overlay(netns)

    def forget(self) -> None:
        self._built.clear()
