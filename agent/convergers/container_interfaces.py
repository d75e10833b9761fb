"""A running container's network namespace and its interfaces, one veth per attachment."""
from __future__ import annotations

import logging
from collections.abc import Awaitable

from agent import container_network as plan
from agent import names
from agent.host_networks import HostNetworks
from agent.kernel.netns import ensure_netns, netns_exists, remove_netns
from agent.kernel.veth import (bridge_end_exists, ensure_interface, prune_interfaces, remove_host_link,
                               remove_interfaces_with_macs)
from agent.local_state import LocalContainer
from proto.network_mode import NetworkMode
from proto.records import ContainerSpec, Network

log = logging.getLogger(__name__)


class ContainerInterfaces:
    def __init__(self, host: HostNetworks):
        self.host = host
        # What the last passes built per container name. Re-checking every
        # container's interfaces on each `run` made a pass cost O(containers)
        # netlink round trips (most of an attach's time at 30 containers) and
        # delayed every table change behind them.
        self._built: dict[str, tuple] = {}

    def forget(self, name: str | None = None) -> None:
        """Re-check one container's interfaces on its next build (a (re)start), or every one."""
        if name is None:
            self._built.clear()
        else:
            self._built.pop(name, None)

    async def namespace(self, spec: ContainerSpec, mode: NetworkMode) -> str | None:
        """The container's own network namespace (none for host or container:NAME), made
        before its runtime creates the container in it; build() adds its interfaces.
        Returns its name if it was made now (new, so empty), else None."""
        if not mode.own_namespace:
            return None
        container_ns = names.container_netns(self.host.host, spec.id)
        existed = netns_exists(container_ns)
        await ensure_netns(container_ns)
        return None if existed else container_ns

    async def build(self, spec: ContainerSpec, mode: NetworkMode, networks: dict[str, Network],
                    record: LocalContainer, guarded: Awaitable[None] | None = None) -> None:
        """Its interfaces as planned; `guarded`: port security's pass over them, awaited
        before any is made (no frame crosses an unguarded port), not when none is."""
        if not mode.own_namespace:
            return  # host or container:NAME: nothing of its own
        container_ns = names.container_netns(self.host.host, spec.id)
        interfaces = tuple(plan.interfaces(spec, networks, record, self.host)) if mode.attaches else ()
        built = (spec.id, mode, interfaces)
        if self._built.get(spec.name) == built:
            return  # an earlier pass built exactly this; the periodic pass re-checks it
        if guarded is not None:
            await guarded
        await ensure_netns(container_ns)
        for interface in interfaces:
            await ensure_interface(interface)
        for removed in await prune_interfaces(container_ns, {i.ifname for i in interfaces}):
            log.info("container %s: removed interface %s", spec.name, removed)
        self._built[spec.name] = built

    async def build_engine(self, spec: ContainerSpec, networks: dict[str, Network],
                           record: LocalContainer, guarded: Awaitable[None] | None = None) -> None:
        """An engine's endpoint, joined: its interface in the engine's namespace (named
        here when it joined, agent/engines/). Nothing else there is touched: other
        interfaces, addresses and routes are the engine's."""
        interfaces = tuple(plan.interfaces(spec, networks, record, self.host))
        built = (spec.id, spec.sandbox, interfaces)
        if self._built.get(spec.name) == built:
            return
        if guarded is not None:
            await guarded
        for interface in interfaces:
            if interface.handover:
                # Handed over: made once; the engine moves the container end away
                # into its sandbox, which is named here later.
                if not await bridge_end_exists(interface):
                    await ensure_interface(interface)
            else:
                await ensure_interface(interface)
        self._built[spec.name] = built

    async def release_engine(self, spec: ContainerSpec) -> None:
        """An engine's endpoint left (or removed): its interface goes, found by its MAC
        (the name may be gone from the spec), then the name of the namespace. The
        namespace itself is the engine's and lives on while the engine holds it."""
        self._built.pop(spec.name, None)
        # Its gwbridge pair, by the end on the host's side.
        await remove_host_link(names.gw_veth(spec.id))
        macs = {a.mac for a in spec.attachments}
        # Docker moves its interfaces back here before it leaves.
        for removed in await remove_interfaces_with_macs(None, macs):
            log.info("endpoint %s: removed interface %s", spec.name, removed)
        container_ns = names.container_netns(self.host.host, spec.id)
        if not netns_exists(container_ns):
            return
        for removed in await remove_interfaces_with_macs(container_ns, macs):
            log.info("endpoint %s: removed interface %s", spec.name, removed)
        await remove_netns(container_ns)

    async def release(self, spec: ContainerSpec) -> None:
        """No interfaces and no namespace of its own: the container is not running (or gone)."""
        self._built.pop(spec.name, None)
        container_ns = names.container_netns(self.host.host, spec.id)
        if netns_exists(container_ns):
            await prune_interfaces(container_ns, set())
            await remove_netns(container_ns)
