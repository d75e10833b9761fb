"""The agent's reconcile loop: the convergers (agent/convergers/), in order.

Level-triggered: each pass has every converger compare what the controller
wants (the view) with what this host actually has (local records, running
processes, network namespaces, bridges, FDB and neighbour entries read
from the kernel) and fix the difference. It runs on every view update,
whenever a container exits, and every RESYNC_SECONDS, so an agent restart
or a missed event heals on the next pass. The convergers remember what
they built, so an event pass only touches what changed; the periodic pass,
and the pass after a failed one, makes them forget and re-check everything.
"""
from __future__ import annotations

import asyncio
import logging
import time

from agent import drivers, memory
from agent.convergers.containers import Containers
from agent.convergers.embedded_dns import EmbeddedDns
from agent.convergers.host_firewall import HostFirewall
from agent.convergers.mesh_legs import MeshLegs
from agent.convergers.port_security import PortSecurity
from agent.convergers.service_lb import ServiceLoadBalancers
from agent.convergers.vtep_filter import VtepFilter
from agent.guards import cluster_guards
from agent.host_networks import HostNetworks
from agent.images.store import ImageStore
from agent.kernel.bridge import ensure_bridge
from agent.kernel.firewall import Guard
from agent.kernel.gwbridge import ensure_gwbridge
from agent.link import ControllerLink
from agent.local_state import LocalState
from agent.oci.runtime import Runtime
from agent.view import View

log = logging.getLogger(__name__)

RESYNC_SECONDS = 10.0


class Reconciler:
    def __init__(self, host: HostNetworks, vtep_ip: str, view: View, runtime: Runtime, images: ImageStore,
                 local: LocalState, link: ControllerLink, vtep_filter: bool = True,
                 port_security: bool = True, guards: tuple[Guard, ...] = (), dns: EmbeddedDns | None = None):
        self.host = host
        self.view = view
        self.local = local
        self._wake = asyncio.Event()
        # Accept VXLAN only from live hosts' VTEPs (agent option vtep-filter).
        self.vtep_filter = VtepFilter(enabled=vtep_filter)
        # Per driver, the convergers of what its networks need in the kernel.
        self.network_convergers = {name: driver.convergers(host, vtep_ip, view)
                                   for name, driver in drivers.DRIVERS.items()}
        # Every container port carries only its container's MAC and addresses (agent option port-security).
        self.port_security = PortSecurity(host, enabled=port_security)
        self.dns = dns
        self.containers = Containers(host, view, runtime, images, local, report=link.report, wake=self.wake,
                                     dns=dns)
        self.firewall = HostFirewall(host, guards)
        self.load_balancers = ServiceLoadBalancers(host, view)
        self.mesh = MeshLegs(host, view)
        self.passes = 0
        self._passed = asyncio.Event()   # set (and replaced) as each pass ends, failed or not
        self._begun = 0                  # passes begun, and ended (failed or not)
        self._ended = 0

    def wake(self) -> None:
        self._wake.set()

    async def next_pass(self) -> None:
        """Wake the loop and wait for the end of a pass that began after this call
        (the one running now, if any, may have read the view before it changed)."""
        wanted = self._begun + 1
        self.wake()
        while self._ended < wanted:
            await self._passed.wait()

    def forget(self) -> None:
        """Every converger re-checks everything on the next pass."""
        self.vtep_filter.forget()
        for convergers in self.network_convergers.values():
            for converger in convergers:
                converger.forget()
        self.port_security.forget()
        self.containers.forget()
        self.firewall.forget()
        self.load_balancers.forget()
        self.mesh.forget()

    async def run(self) -> None:
        # The bridges every host has, whatever the view says.
        await ensure_gwbridge(self.host.gwbridge)
        await ensure_bridge(self.host.default_bridge)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), RESYNC_SECONDS)
            except asyncio.TimeoutError:
                self.forget()  # periodic pass: re-check everything, healing drift
                # What the last one read back whole (tables, namespaces) is freed by now.
                memory.give_back()
            self._wake.clear()
            self._begun += 1
            try:
                await self.reconcile()
            except Exception:
                # One bad pass must not stop the loop; the next pass retries.
                log.exception("reconcile pass failed")
                self.forget()
                await asyncio.sleep(0.5)
                self._wake.set()
            finally:
                self._ended = self._begun
                passed, self._passed = self._passed, asyncio.Event()
                passed.set()

    async def reconcile(self) -> None:
        if self.view.revision == 0:
            return  # no state from the controller yet: change nothing
        began = time.time()
        desired = self.view.containers()
        local = self.local.load_all()
        if self.dns is not None:
            self.dns.refresh(self.view)  # first: a removed container's names go before anything else
        removed = await self.containers.remove_gone(desired, local)
        try:
            networks = self.view.networks()
            await self.vtep_filter.converge(self.view.live_vteps(),
                                            drivers.container_bridge_names(networks.values(), self.host))
            # Networks and their tables before containers: a container reported
            # running (or connected) can already reach every peer this host knows of.
            by_driver = drivers.by_driver(networks.values())
            for name, convergers in self.network_convergers.items():
                for converger in convergers:
                    await converger.converge(by_driver[name], began)
            # Port security before the interfaces exist: no frame crosses an unguarded
            # port. Every interface to be made waits for it; a start's image check,
            # namespace and runtime create go on beside it.
            planned = self.containers.prepare(desired, local, networks)
            guarding = asyncio.ensure_future(self.port_security.converge(planned, networks))
            try:
                published = await self.containers.converge(desired, local, networks, began, guarding)
            finally:
                await guarding   # its failure fails the pass, even if nothing waited for it
            mesh = await self.mesh.converge(networks)
            # Services' VIPs in every container's namespace, before it is reported running.
            self.load_balancers.made_empty(self.containers.take_made_namespaces())
            await self.load_balancers.converge(desired)
            await self.firewall.converge(networks, published,
                                         cluster_guards(self.view.hosts().values(), self.view.controllers()), mesh)
            # Reported once the published ports are in place too, so a `run -p`
            # that returns means the port answers.
            await self.containers.report(desired, local)
            # Leftovers of a crash: after the report, which nothing of them changes
            # and a `run` waits for.
            await self.containers.remove_orphans(local.values())
        finally:
            # "removed" only now, with its published ports gone too: the
            # controller frees the container's addresses and ports on this
            # report. Sent even if the pass failed: the local record is gone.
            self.containers.report_removed(removed)
        self.passes += 1
