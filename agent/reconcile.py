"""The agent's reconcile loop: make the kernel and the processes match the view.

Level-triggered: each pass compares what the controller wants (the view)
with what this host actually has (local records, running processes, network
namespaces, FDB and neighbour entries read from the kernel) and fixes the
difference. It runs on every view update and every RESYNC_SECONDS, so an
agent restart or a missed event heals on the next pass.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

from agent import names
from agent.kernel import table
from agent.kernel.gwbridge import GwBridgeSpec, ensure_gwbridge
from agent.kernel.netns import ensure_netns, list_netns, netns_path, remove_netns
from agent.kernel.overlay import OverlaySpec, ensure_overlay, remove_overlay
from agent.kernel.veth import Interface, ensure_interface
from agent.link import ControllerLink
from agent.local_state import LocalContainer, LocalState
from agent.runtime.containers import ContainerConfig, ContainerError, Runtime
from agent.table_diff import desired_entries, plan
from agent.view import View
from proto.records import ContainerSpec, ContainerStatus, Network

log = logging.getLogger(__name__)

RESYNC_SECONDS = 10.0


class Reconciler:
    def __init__(self, host: str, vtep_ip: str, underlay_mtu: int, view: View, runtime: Runtime,
                 local: LocalState, link: ControllerLink, gwbridge: GwBridgeSpec):
        self.host = host
        self.vtep_ip = vtep_ip
        self.underlay_mtu = underlay_mtu
        # VXLAN adds 50 bytes of headers: containers get the rest, so nothing fragments.
        self.mtu = underlay_mtu - 50
        self.view = view
        self.runtime = runtime
        self.local = local
        self.link = link
        self.gwbridge = gwbridge
        self._wake = asyncio.Event()
        self._stopping: dict[str, asyncio.Task] = {}
        self.passes = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await ensure_gwbridge(self.gwbridge)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), RESYNC_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:
                # One bad pass must not stop the loop; the next pass retries.
                log.exception("reconcile pass failed")
                await asyncio.sleep(0.5)
                self._wake.set()

    async def reconcile(self) -> None:
        if self.view.revision == 0:
            return  # no state from the controller yet: change nothing
        desired = self.view.containers()
        local = self.local.load_all()
        for name, record in local.items():
            if name not in desired or desired[name].id != record.spec.id:
                await self._teardown(record)
                local.pop(name)
        networks = self.view.networks()
        await self._converge_networks(networks)
        for spec in desired.values():
            record = await self._converge_container(spec, networks, local.get(spec.name))
            local[spec.name] = record
        await self._remove_orphan_namespaces(local.values())
        for network in networks.values():
            await self._converge_table(network)
        self.passes += 1

    # ---- networks ----------------------------------------------------------

    async def _converge_networks(self, networks: dict[str, Network]) -> None:
        wanted = set()
        for network in networks.values():
            netns = names.overlay_netns(self.host, network.vni)
            wanted.add(netns)
            subnet = ipaddress.ip_network(network.subnet)
            await ensure_overlay(netns, OverlaySpec(vni=network.vni, gateway=network.gateway,
                                                    prefixlen=subnet.prefixlen, vtep_ip=self.vtep_ip,
                                                    mtu=self.mtu))
        overlay_prefix = names.netns_prefix(self.host) + "ov"
        for netns in list_netns(overlay_prefix):
            if netns not in wanted:
                log.info("removing overlay namespace %s: no container of this host uses it", netns)
                await remove_overlay(netns)

    async def _converge_table(self, network: Network) -> None:
        netns = names.overlay_netns(self.host, network.vni)
        want_fdb, want_neigh = desired_entries(self.view.endpoints(network.name), self.host)
        have_fdb = await table.read_fdb(netns, network.vni)
        have_neigh = await table.read_neighbours(netns, network.vni)
        todo = plan(want_fdb, want_neigh, have_fdb, have_neigh)
        if not todo:
            return
        errors = await table.program(netns, network.vni, todo.fdb_put, todo.fdb_del,
                                     todo.neigh_put, todo.neigh_del)
        if errors:
            raise RuntimeError(f"network {network.name}: {len(errors)} table entries failed: {errors[:3]}")

    # ---- containers --------------------------------------------------------

    async def _converge_container(self, spec: ContainerSpec, networks: dict[str, Network],
                                  record: LocalContainer | None) -> LocalContainer:
        if record is None:
            record = LocalContainer(spec=spec)
        record.spec = spec
        if spec.attachments and not record.gw_ip:
            record.gw_ip = self._free_gw_ip()
        # Written before building anything, so a crash leaves a record to clean up from.
        self.local.save(record)
        missing = [a.network for a in spec.attachments if a.network not in networks]
        if missing:
            return record  # the network records are on their way in the stream
        container_ns = names.container_netns(self.host, spec.id)
        await ensure_netns(container_ns)
        for interface in self._interfaces(spec, networks, record):
            await ensure_interface(interface)

        state = await self.runtime.state(spec.id)
        if spec.desired == "running":
            fresh = state is None or (state.state != "running" and record.started_generation < spec.generation)
            if fresh:
                await self._start(spec, record, container_ns)
        elif state is not None and state.state == "running" and spec.name not in self._stopping:
            self._stopping[spec.name] = asyncio.create_task(self._stop(spec))
        await self._report(spec, record)
        return record

    def _interfaces(self, spec: ContainerSpec, networks: dict[str, Network],
                    record: LocalContainer) -> list[Interface]:
        container_ns = names.container_netns(self.host, spec.id)
        interfaces = []
        for index, attachment in enumerate(spec.attachments):
            network = networks[attachment.network]
            prefixlen = ipaddress.ip_network(network.subnet).prefixlen
            interfaces.append(Interface(
                container_netns=container_ns, ifname=f"eth{index}",
                peer_netns=names.overlay_netns(self.host, network.vni),
                peer_ifname=names.overlay_veth(spec.id, index), bridge=names.BRIDGE,
                address=f"{attachment.ip}/{prefixlen}", mac=attachment.mac, mtu=self.mtu,
                default_gateway=None))
        if record.gw_ip:
            # Docker's docker_gwbridge: the overlay container's way out, and its default route.
            prefixlen = ipaddress.ip_network(self.gwbridge.subnet).prefixlen
            interfaces.append(Interface(
                container_netns=container_ns, ifname=f"eth{len(spec.attachments)}",
                peer_netns=None, peer_ifname=names.gw_veth(spec.id), bridge=self.gwbridge.name,
                address=f"{record.gw_ip}/{prefixlen}", mac=None, mtu=self.mtu,
                default_gateway=self.gwbridge.gateway, isolated=True))
        return interfaces

    def _free_gw_ip(self) -> str:
        subnet = ipaddress.ip_network(self.gwbridge.subnet)
        taken = {r.gw_ip for r in self.local.load_all().values()} | {self.gwbridge.gateway}
        for address in subnet.hosts():
            if str(address) not in taken:
                return str(address)
        raise RuntimeError(f"gwbridge subnet {subnet} of host {self.host} is full")

    async def _start(self, spec: ContainerSpec, record: LocalContainer, container_ns: str) -> None:
        config = ContainerConfig(id=spec.id, name=spec.name, command=list(spec.command), env=dict(spec.env),
                                 hostname=spec.hostname or spec.name, netns_path=netns_path(container_ns))
        record.started_generation = spec.generation
        try:
            await self.runtime.start(config)
            record.error = ""
        except ContainerError as err:
            record.error = str(err)
            log.warning("container %s failed to start: %s", spec.name, err)
        self.local.save(record)

    async def _stop(self, spec: ContainerSpec) -> None:
        try:
            await self.runtime.stop(spec.id, float(spec.stop_timeout))
        finally:
            self._stopping.pop(spec.name, None)
            self.wake()

    async def _report(self, spec: ContainerSpec, record: LocalContainer) -> None:
        state = await self.runtime.state(spec.id)
        status = ContainerStatus(name=spec.name, id=spec.id, host=self.host,
                                 generation=record.started_generation, error=record.error)
        if state is not None:
            status.state = state.state
            status.pid = state.pid
            status.exit_code = state.exit_code
            status.started_at = state.started_at
            status.finished_at = state.finished_at
        elif record.error:
            status.state = "exited"
            status.exit_code = 127
        self.link.report(status)

    async def _teardown(self, record: LocalContainer) -> None:
        spec = record.spec
        log.info("removing container %s (%s)", spec.name, spec.id[:12])
        state = await self.runtime.state(spec.id)
        if state is not None:
            if state.state == "running":
                await self.runtime.stop(spec.id, 0.0)  # rm -f: no grace period, as Docker
            await self.runtime.remove(spec.id)
        # Deleting the namespace deletes its veth ends, and with them the peers
        # on the bridges.
        await remove_netns(names.container_netns(self.host, spec.id))
        self.local.delete(spec.name)
        self.link.report(ContainerStatus(name=spec.name, id=spec.id, host=self.host, state="removed",
                                         finished_at=time.time()))

    async def _remove_orphan_namespaces(self, records) -> None:
        """Container namespaces no record explains (a crash between creating and recording)."""
        known = {names.container_netns(self.host, r.spec.id) for r in records}
        for netns in list_netns(names.netns_prefix(self.host) + "c"):
            if netns not in known:
                log.info("removing orphan namespace %s", netns)
                await remove_netns(netns)
