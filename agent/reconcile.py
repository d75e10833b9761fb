"""The agent's reconcile loop: make the kernel and the processes match the view.

Level-triggered: each pass compares what the controller wants (the view)
with what this host actually has (local records, running processes, network
namespaces, bridges, FDB and neighbour entries read from the kernel) and
fixes the difference. It runs on every view update, whenever a container
exits, and every RESYNC_SECONDS, so an agent restart or a missed event heals
on the next pass.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

from agent import container_network as plan
from agent import names
from agent.kernel import firewall, table, vtep_filter
from agent.kernel.bridge import LocalBridgeSpec, ensure_bridge, list_bridges, remove_bridge
from agent.kernel.gwbridge import ensure_gwbridge
from agent.kernel.netns import ensure_netns, list_netns, netns_exists, netns_path, remove_netns
from agent.kernel.overlay import OverlaySpec, ensure_overlay, remove_overlay
from agent.kernel.veth import ensure_interface, prune_interfaces
from agent.link import ControllerLink
from agent.local_state import LocalContainer, LocalState
from agent.runtime.containers import ContainerConfig, ContainerError, Runtime
from agent.runtime.model import Mount, Resources
from agent.table_diff import desired_entries, plan as plan_table
from agent.view import View
from proto import timing
from proto.network_mode import NetworkMode
from proto.records import ContainerSpec, ContainerStatus, Network

log = logging.getLogger(__name__)

RESYNC_SECONDS = 10.0
# --network container:A where A itself uses container:B ...: how deep to follow.
MAX_NETWORK_CHAIN = 8


class Reconciler:
    def __init__(self, host: plan.HostNetworks, vtep_ip: str, view: View, runtime: Runtime,
                 local: LocalState, link: ControllerLink, vtep_filter: bool = True,
                 guards: tuple[firewall.Guard, ...] = ()):
        self.host = host
        self.vtep_ip = vtep_ip
        # Accept VXLAN only from live hosts' VTEPs (agent option vtep-filter).
        self.vtep_filter = vtep_filter
        # Control-plane ports the containers must not reach.
        self.guards = guards
        self.view = view
        self.runtime = runtime
        self.local = local
        self.link = link
        self._wake = asyncio.Event()
        self._stopping: dict[str, asyncio.Task] = {}
        self._exit_watches: dict[str, asyncio.Task] = {}
        self._applied_rules: firewall.HostRules | None = None
        self._applied_vteps: frozenset[str] | None = None  # None: not known to be applied
        self._pass_began = 0.0
        # What the last passes built and checked, so an event pass (a view
        # update) only touches what changed: re-checking every container's
        # interfaces, bridge and overlay on each `run` made a pass cost
        # O(containers) netlink round trips (most of an attach's time at 30
        # containers), and delayed every table change behind them.
        # Cleared by the periodic pass, which re-checks everything and so
        # still heals drift, and after a failed pass.
        self._built: dict[str, tuple] = {}
        self._bridges_built: tuple | None = None
        self._overlays_built: dict[str, OverlaySpec] = {}
        self.passes = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await ensure_gwbridge(self.host.gwbridge)
        await ensure_bridge(self.host.default_bridge)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), RESYNC_SECONDS)
            except asyncio.TimeoutError:
                self._forget_built()  # periodic pass: re-check everything, healing drift
                self._applied_vteps = None
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:
                # One bad pass must not stop the loop; the next pass retries.
                log.exception("reconcile pass failed")
                self._forget_built()
                await asyncio.sleep(0.5)
                self._wake.set()

    async def reconcile(self) -> None:
        if self.view.revision == 0:
            return  # no state from the controller yet: change nothing
        self._pass_began = time.time()
        desired = self.view.containers()
        local = self.local.load_all()
        removed = []
        for name, record in list(local.items()):
            if name not in desired or desired[name].id != record.spec.id:
                await self._teardown(record)
                removed.append(record.spec)
                local.pop(name)
        try:
            await self._converge_vtep_filter()
            networks = self.view.networks()
            await self._converge_overlays(networks)
            # Tables before containers: a container reported running (or connected)
            # can already reach every peer this host knows of.
            for network in networks.values():
                if network.scope != "local":
                    await self._converge_table(network)
            bridges = await self._converge_bridges(networks)
            ports = []
            # Owners of a shared network namespace first, so joiners find it built.
            for spec in sorted(desired.values(), key=lambda s: NetworkMode.of(s).shares_container):
                record, running = await self._converge_container(spec, networks, local.get(spec.name), desired)
                local[spec.name] = record
                if running and not spec.network_mode:
                    ports += plan.port_rules(spec, networks, record, self.host)
            await self._remove_orphans(local.values())
            await self._apply_rules(firewall.HostRules(bridges=tuple(plan.bridge_rules(self.host, bridges)),
                                                       ports=tuple(ports), guards=self.guards))
            # Reported once the published ports are in place too, so a `run -p`
            # that returns means the port answers.
            for spec in desired.values():
                await self._report(spec, local[spec.name])
        finally:
            # "removed" only now, with its published ports gone too: the
            # controller frees the container's addresses and ports on this
            # report. Sent even if the pass failed: the local record is gone.
            for spec in removed:
                self.link.report(ContainerStatus(name=spec.name, id=spec.id, host=self.host.host,
                                                 state="removed", finished_at=time.time()))
        self.passes += 1

    def _forget_built(self) -> None:
        self._applied_rules = None
        self._built.clear()
        self._bridges_built = None
        self._overlays_built.clear()

    # ---- networks ----------------------------------------------------------

    async def _converge_overlays(self, networks: dict[str, Network]) -> None:
        wanted = set()
        for network in networks.values():
            if network.scope == "local":
                continue
            netns = names.overlay_netns(self.host.host, network.vni)
            wanted.add(netns)
            prefixlen = int(network.subnet.partition("/")[2])
            spec = OverlaySpec(vni=network.vni, gateway=network.gateway, prefixlen=prefixlen,
                               vtep_ip=self.vtep_ip, mtu=self.host.overlay_mtu)
            if self._overlays_built.get(netns) == spec:
                continue  # as containers: the periodic pass re-checks it
            await ensure_overlay(netns, spec)
            self._overlays_built[netns] = spec
        overlay_prefix = names.netns_prefix(self.host.host) + "ov"
        for netns in list_netns(overlay_prefix):
            if netns not in wanted:
                log.info("removing overlay namespace %s: no container of this host uses it", netns)
                self._overlays_built.pop(netns, None)
                await remove_overlay(netns)

    async def _converge_bridges(self, networks: dict[str, Network]) -> list[LocalBridgeSpec]:
        """The default bridge always (as docker0), user bridge networks while used here."""
        bridges = {self.host.default_bridge.name: self.host.default_bridge}
        for network in networks.values():
            if network.scope == "local":
                spec = self.host.bridge_for(network)
                bridges[spec.name] = spec
        wanted = tuple(sorted(bridges.items()))
        if wanted == self._bridges_built:
            return list(bridges.values())
        for spec in bridges.values():
            await ensure_bridge(spec)
        for name in await list_bridges(names.LOCAL_BRIDGE_PREFIX):
            if name not in bridges:
                log.info("removing bridge %s: no container of this host uses its network", name)
                await remove_bridge(name)
        self._bridges_built = wanted
        return list(bridges.values())

    async def _converge_vtep_filter(self) -> None:
        """VXLAN accepted from the live hosts' VTEPs only; no table when switched off."""
        wanted = frozenset(self.view.live_vteps()) if self.vtep_filter else frozenset()
        if wanted == self._applied_vteps:
            return
        if self.vtep_filter:
            await vtep_filter.converge(set(wanted))
        else:
            await vtep_filter.remove()
        self._applied_vteps = wanted

    async def _apply_rules(self, rules: firewall.HostRules) -> None:
        if rules != self._applied_rules:
            await firewall.apply(rules)
            self._applied_rules = rules

    async def _converge_table(self, network: Network) -> None:
        netns = names.overlay_netns(self.host.host, network.vni)
        want_fdb, want_neigh = desired_entries(self.view.endpoints(network.name), self.host.host)
        have_fdb = await table.read_fdb(netns, network.vni)
        have_neigh = await table.read_neighbours(netns, network.vni)
        todo = plan_table(want_fdb, want_neigh, have_fdb, have_neigh)
        if not todo:
            return
        errors = await table.program(netns, network.vni, todo.fdb_put, todo.fdb_del,
                                     todo.neigh_put, todo.neigh_del)
        if errors:
            raise RuntimeError(f"network {network.name}: {len(errors)} table entries failed: {errors[:3]}")
        # One event per table change (a batch, never per entry), with wall-clock
        # stamps to line up with the controller's.
        timing.emit(log, timing.TABLE_PROGRAMMED, network=network.name, host=self.host.host,
                    fdb_put=len(todo.fdb_put), fdb_del=len(todo.fdb_del), neigh_put=len(todo.neigh_put),
                    neigh_del=len(todo.neigh_del), update=self.view.updated_at, began=self._pass_began,
                    programmed=time.time())

    # ---- containers --------------------------------------------------------

    async def _converge_container(self, spec: ContainerSpec, networks: dict[str, Network],
                                  record: LocalContainer | None,
                                  desired: dict[str, ContainerSpec]) -> tuple[LocalContainer, bool]:
        """Returns the record and whether the container runs after this pass."""
        if record is None:
            record = LocalContainer(spec=spec)
        record.spec = spec
        if spec.networks and any(n not in networks for n in spec.networks):
            self.local.save(record)
            return record, False  # the network records are on their way in the stream
        if not spec.network_mode:
            plan.assign_ifnames(record, spec, networks)
            if plan.GWBRIDGE_KEY not in record.ifnames:
                record.gw_ip = ""
            elif not record.gw_ip:
                record.gw_ip = self._free_gw_ip()
        # Written before building anything, so a crash leaves a record to clean up from.
        self.local.save(record)

        state = await self.runtime.state(spec.id)
        running = state is not None and state.state == "running"
        start = spec.desired == "running" and (
            state is None or (not running and record.started_generation < spec.generation))
        building = time.time()
        if start:
            self._built.pop(spec.name, None)  # a (re)start always checks its network
        if running or start:
            await self._build_network(spec, networks, record)
        if start:
            built = time.time()
            running = await self._start(spec, record, desired)
            # One event per start, with wall-clock stamps to line up with the controller's `run` event.
            timing.emit(log, timing.CONTAINER_STARTED, container=spec.name, host=self.host.host,
                        update=self.view.updated_at, began=self._pass_began, network=building, built=built,
                        process=time.time())
        elif running and spec.desired != "running" and spec.name not in self._stopping:
            self._stopping[spec.name] = asyncio.create_task(self._stop(spec))
        if not running:
            # As Docker: a container that is not running has no interfaces (a
            # container sharing its namespace keeps just lo).
            await self._release_network(spec)
        else:
            self._watch_exit(spec)
        return record, running

    async def _build_network(self, spec: ContainerSpec, networks: dict[str, Network],
                             record: LocalContainer) -> None:
        if spec.network_mode not in ("", "none"):
            return  # host or container:NAME: nothing of its own
        container_ns = names.container_netns(self.host.host, spec.id)
        interfaces = tuple(plan.interfaces(spec, networks, record, self.host)) if not spec.network_mode else ()
        built = (spec.id, spec.network_mode, interfaces)
        if self._built.get(spec.name) == built:
            return  # an earlier pass built exactly this; the periodic pass re-checks it
        await ensure_netns(container_ns)
        for interface in interfaces:
            await ensure_interface(interface)
        for removed in await prune_interfaces(container_ns, {i.ifname for i in interfaces}):
            log.info("container %s: removed interface %s", spec.name, removed)
        self._built[spec.name] = built

    async def _release_network(self, spec: ContainerSpec) -> None:
        self._built.pop(spec.name, None)
        container_ns = names.container_netns(self.host.host, spec.id)
        if netns_exists(container_ns):
            await prune_interfaces(container_ns, set())
            await remove_netns(container_ns)

    def _free_gw_ip(self) -> str:
        gw = self.host.gwbridge
        taken = {r.gw_ip for r in self.local.load_all().values()} | {gw.gateway}
        for address in ipaddress.ip_network(gw.subnet).hosts():
            if str(address) not in taken:
                return str(address)
        raise RuntimeError(f"gwbridge subnet {gw.subnet} of host {self.host.host} is full")

    def _netns_for(self, spec: ContainerSpec, desired: dict[str, ContainerSpec]) -> str:
        """The network namespace path the container joins ("" = this host's own)."""
        current = spec
        for _ in range(MAX_NETWORK_CHAIN):
            if current.network_mode == "host":
                return ""
            owner_name = NetworkMode.of(current).container
            if not owner_name:
                return netns_path(names.container_netns(self.host.host, current.id))
            owner = desired.get(owner_name)
            if owner is None:
                raise ContainerError(f"cannot join the network of container {owner_name!r}: "
                                     f"it does not exist on host {self.host.host}")
            if owner.network_mode in ("", "none") and not netns_exists(
                    names.container_netns(self.host.host, owner.id)):
                raise ContainerError(
                    f"cannot join the network of container {owner_name!r}: it is not running")
            current = owner
        raise ContainerError(f"container {spec.name!r}: --network container: chain is too long")

    async def _start(self, spec: ContainerSpec, record: LocalContainer,
                     desired: dict[str, ContainerSpec]) -> bool:
        record.started_generation = spec.generation
        try:
            config = ContainerConfig(
                id=spec.id, name=spec.name, command=list(spec.command), env=dict(spec.env),
                hostname=spec.hostname or spec.name, netns_path=self._netns_for(spec, desired),
                rootfs=spec.rootfs,
                mounts=tuple(Mount(m.source, m.target, m.readonly) for m in spec.mounts),
                resources=Resources(memory_bytes=spec.memory_bytes, cpus=spec.cpus,
                                    pids_limit=spec.pids_limit))
            state = await self.runtime.start(config)
            record.error = ""
        except ContainerError as err:
            record.error = str(err)
            log.warning("container %s failed to start: %s", spec.name, err)
            state = None
        self.local.save(record)
        return state is not None and state.state == "running"

    async def _stop(self, spec: ContainerSpec) -> None:
        try:
            await self.runtime.stop(spec.id, float(spec.stop_timeout))
        finally:
            self._stopping.pop(spec.name, None)
            self.wake()

    def _watch_exit(self, spec: ContainerSpec) -> None:
        """Wake the loop when the container exits, so `ps -a` shows it at once."""
        task = self._exit_watches.get(spec.id)
        if task is not None and not task.done():
            return

        async def watch() -> None:
            await self.runtime.wait_exit(spec.id)
            self.wake()
        self._exit_watches[spec.id] = asyncio.create_task(watch(), name=f"exit-{spec.name}")

    async def _report(self, spec: ContainerSpec, record: LocalContainer) -> None:
        state = await self.runtime.state(spec.id)
        status = ContainerStatus(name=spec.name, id=spec.id, host=self.host.host,
                                 generation=record.started_generation, error=record.error,
                                 networks=list(spec.networks))
        if state is not None:
            status.state = state.state
            status.pid = state.pid
            status.exit_code = state.exit_code
            status.started_at = state.started_at
            status.finished_at = state.finished_at
        elif record.error:
            status.state = "created"
            status.exit_code = 127
        self.link.report(status)

    async def _teardown(self, record: LocalContainer) -> None:
        spec = record.spec
        log.info("removing container %s (%s)", spec.name, spec.id[:12])
        watch = self._exit_watches.pop(spec.id, None)
        if watch is not None:
            watch.cancel()
        state = await self.runtime.state(spec.id)
        if state is not None:
            if state.state == "running":
                await self.runtime.stop(spec.id, 0.0)  # rm -f: no grace period, as Docker
            await self.runtime.remove(spec.id)
        await self._release_network(spec)
        self.local.delete(spec.name)

    async def _remove_orphans(self, records) -> None:
        """Namespaces and cgroups no record explains (a crash between creating and recording)."""
        records = list(records)
        known = {names.container_netns(self.host.host, r.spec.id) for r in records}
        for netns in list_netns(names.netns_prefix(self.host.host) + "c"):
            if netns not in known:
                log.info("removing orphan namespace %s", netns)
                await remove_netns(netns)
        for cgroup in await self.runtime.remove_orphan_cgroups({r.spec.id for r in records}):
            log.info("removed orphan cgroup %s", cgroup)
