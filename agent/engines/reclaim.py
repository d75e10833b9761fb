"""Endpoints their engine forgot: reclaimed, table rows and address.

An engine tells the plug-in when an endpoint goes (Docker's Leave and
DeleteEndpoint, CNI's DEL), unless it dies first, or its state is wiped, or
a runtime skips DEL. What the engine holds on this host is its containers'
processes: a joined endpoint's namespace with no process in it (Docker and
podman both take a stopped container's network away, so a live endpoint
always has one), or an endpoint never joined, is the engine's no more once
it stays so for GRACE_SECONDS (a container's namespace exists a moment
before its first process), and is removed: its table rows, address and
status in one transaction (the controller's Reclaim), so the address is
free the moment the endpoint leaves the network.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from agent import names
from agent.engines.endpoints import EngineEndpoints, EngineError
from agent.kernel.netns import netns_exists, netns_path
from proto.records import ContainerSpec

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
GRACE_SECONDS = 20.0


def processes_in_netns(path: str) -> bool:
    """Whether any process has the network namespace at `path` as its own."""
    try:
        wanted = os.stat(path).st_ino
    except OSError:
        return False
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == wanted:
                    return True
            except OSError:
                continue
    return False


class Reclaimer:
    def __init__(self, endpoints: EngineEndpoints, engine_specs: Callable[[], list[ContainerSpec]],
                 grace: float = GRACE_SECONDS, interval: float = INTERVAL_SECONDS):
        self.endpoints = endpoints
        self.engine_specs = engine_specs   # this host's engines' endpoints, from the agent's view
        self.grace = grace
        self.interval = interval
        self._abandoned_since: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("reclaiming engines' endpoints failed; retrying")

    async def sweep(self, now: float | None = None) -> list[str]:
        """Remove what has been abandoned for the grace period; the names removed."""
        now = time.time() if now is None else now
        specs = self.engine_specs()
        current = {spec.name for spec in specs}
        for name in list(self._abandoned_since):
            if name not in current:
                del self._abandoned_since[name]
        removed = []
        for spec in specs:
            if not await asyncio.to_thread(self._abandoned, spec, now):
                self._abandoned_since.pop(spec.name, None)
                continue
            since = self._abandoned_since.setdefault(spec.name, now)
            if now - since < self.grace:
                continue
            log.warning("%s endpoint %s (container %s) has no container left: reclaiming it", spec.engine,
                        spec.name, spec.engine_id[:12] or "unknown")
            try:
                await self.endpoints.reclaim(spec)
                removed.append(spec.name)
            except EngineError as err:
                log.warning("cannot reclaim %s yet: %s", spec.name, err)
        return removed

    def _abandoned(self, spec: ContainerSpec, now: float) -> bool:
        if not spec.sandbox:
            return now - spec.created_at >= self.grace   # attached, never joined
        if not spec.interface:
            return True   # Docker never made the sandbox it joined (or the agent lost track)
        netns = names.container_netns(self.endpoints.host, spec.id)
        return not netns_exists(netns) or not processes_in_netns(netns_path(netns))
