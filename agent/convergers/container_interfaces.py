"""A running container's network namespace and its interfaces, one veth per attachment."""
from __future__ import annotations

import logging

from agent import container_network as plan
from agent import names
from agent.host_networks import HostNetworks
from agent.kernel.netns import ensure_netns, netns_exists, remove_netns
from agent.kernel.veth import ensure_interface, prune_interfaces
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

    async def build(self, spec: ContainerSpec, mode: NetworkMode, networks: dict[str, Network],
                    record: LocalContainer) -> None:
        if not mode.own_namespace:
            return  # host or container:NAME: nothing of its own
        container_ns = names.container_netns(self.host.host, spec.id)
        interfaces = tuple(plan.interfaces(spec, networks, record, self.host)) if mode.attaches else ()
        built = (spec.id, mode, interfaces)
        if self._built.get(spec.name) == built:
            return  # an earlier pass built exactly this; the periodic pass re-checks it
        await ensure_netns(container_ns)
        for interface in interfaces:
            await ensure_interface(interface)
        for removed in await prune_interfaces(container_ns, {i.ifname for i in interfaces}):
            log.info("container %s: removed interface %s", spec.name, removed)
        self._built[spec.name] = built

    async def release(self, spec: ContainerSpec) -> None:
        """No interfaces and no namespace of its own: the container is not running (or gone)."""
        self._built.pop(spec.name, None)
        container_ns = names.container_netns(self.host.host, spec.id)
        if netns_exists(container_ns):
            await prune_interfaces(container_ns, set())
            await remove_netns(container_ns)
