"""Bridges in the host namespace: the default bridge always (as docker0), a
user bridge network's while a container of this host uses it."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from agent import names
from agent.kernel.bridge import LocalBridgeSpec, ensure_bridge, list_bridges, remove_bridge
from proto.records import Network

log = logging.getLogger(__name__)


class LocalBridges:
    def __init__(self, wanted: Callable[[Sequence[Network]], list[LocalBridgeSpec]]):
        # The bridge driver's answer to "which bridges do these networks need".
        self._wanted = wanted
        self._built: tuple | None = None  # the bridges last built, by name

    async def converge(self, networks: Sequence[Network], began: float) -> None:
        bridges = {spec.name: spec for spec in self._wanted(networks)}
        wanted = tuple(sorted(bridges.items()))
        if wanted == self._built:
            return
        for spec in bridges.values():
            await ensure_bridge(spec)
        for name in await list_bridges(names.LOCAL_BRIDGE_PREFIX):
            if name not in bridges:
                log.info("removing bridge %s: no container of this host uses its network", name)
                await remove_bridge(name)
        self._built = wanted

    def forget(self) -> None:
        self._built = None
