"""The leader's loop: every service's tasks brought to what the service asks for.

While this controller leads (election.py), each pass reads the services, the
containers and the hosts from etcd itself (not the mirror, which may trail
the leader's own last write and make it start a slot twice), asks
scheduling.plan for each service and writes the answer, every write under
the term's fence. Removals go before starts, so a dead task leaves every
load balancer before its replacement exists. A pass runs after any change
the mirror sees, when a back-off ends, and at least every PASS_SECONDS.

A host is dead for the scheduler once the liveness rule took it out of the
tables (controller/liveness.py: its VTEP went silent, or its agent stayed
away past the grace) and it stayed out for GRACE_SECONDS as this leader saw
it. A host whose agent alone is down keeps its tasks and gets no new one.

What a removed container holds (addresses, host ports, its status) is freed
when its host's agent reports it torn down (controller/store/removal.py); a
host that never returns never reports. Once a host has been down for
`release_after` seconds (the controller's `dead-host-release`) as this leader
saw it, the leader frees what its removed containers still hold: its tasks,
removed when they were rescheduled, and containers removed while it was
away. A container whose record still exists keeps everything (the release
compares its record absent in the same transaction).
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time

from controller.cache import StateCache
from controller.run_options import RunImage, RunOptions, with_image_health
from controller.services import constraints, rules
from controller.services.election import Election
from controller.services.rolling import rollout
from controller.services.scheduling import Plan, Start, TaskView, plan
from controller.store import Store
from controller.store.containers import TaskOrigin
from controller.store.fence import Fence, NotLeader
from proto.errors import NotFound, UserError
from proto.image_config import HealthSettings
from proto.network_mode import NetworkMode
from proto.records import ContainerSpec, ContainerStatus, Host, ServiceSpec, ServiceVip

log = logging.getLogger(__name__)

PASS_SECONDS = 2.0
GRACE_SECONDS = 3.0
DEFAULT_DEAD_HOST_RELEASE = 600
# How often a long-dead host is looked at again for containers removed since.
RELEASE_RECHECK = 30.0
ROLE = "services"


class Reconciler:
    def __init__(self, store: Store, cache: StateCache, election: Election, grace: float = GRACE_SECONDS,
                 release_after: float = DEFAULT_DEAD_HOST_RELEASE) -> None:
        self.store = store
        self.cache = cache
        self.election = election
        self.grace = grace
        self.release_after = release_after     # 0: never free a dead host's leftovers
        self._down_since: dict[str, float] = {}
        self._released_at: dict[str, float] = {}   # host -> when its leftovers were last freed

    async def run(self) -> None:
        """Campaign, lead until the term ends, campaign again; until cancelled."""
        try:
            while True:
                fence = await self.election.campaign()
                self._down_since = {}    # a new term judges hosts from its own start
                self._released_at = {}
                holding = asyncio.create_task(self.election.hold(), name="services-lease")
                leading = asyncio.create_task(self._lead(fence), name="services-reconcile")
                try:
                    await asyncio.wait((holding, leading), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (holding, leading):
                        task.cancel()
                    await asyncio.gather(holding, leading, return_exceptions=True)
                    await self.election.resign()
                if not leading.cancelled() and leading.exception() is not None:
                    log.error("the services' reconciler failed; campaigning again after %.0fs",
                              PASS_SECONDS, exc_info=leading.exception())
                    await asyncio.sleep(PASS_SECONDS)
        finally:
            await self.election.resign()

    async def _lead(self, fence: Fence) -> None:
        loop = asyncio.get_running_loop()
        while True:
            seen = self.cache.revision
            try:
                # A pass reads every container and host from etcd: with
                # thousands of them and passes woken by every change, that
                # was most of a large cluster's controller CPU, spent where
                # there was no service. The mirror says whether there is any;
                # once one appears, its change wakes the next pass.
                wake = await self.reconcile(fence) if self.cache.index.has_service_state() else None
            except NotLeader:
                return
            except UserError as err:      # etcd unreachable, a lost race: the next pass retries
                log.warning("service pass: %s", err)
                wake = None
            wait = PASS_SECONDS if wake is None else max(0.05, min(PASS_SECONDS, wake - time.time()))
            deadline = loop.time() + wait
            # Changes this pass made itself wake it once more: harmless, they plan nothing.
            await self.cache.wait_beyond(seen, wait)
            await asyncio.sleep(max(0.0, min(0.2, deadline - loop.time())))

    async def reconcile(self, fence: Fence) -> float | None:
        """One pass over every service; the earliest back-off end it waits for."""
        services = await self.store.services.list_all()
        containers = await self.store.list_containers()
        hosts = await self.store.list_hosts()
        now = time.time()
        live, dead = self._liveness(hosts, now)
        load = {h.name: h.containers for h in hosts}
        by_id = {s.id: s for s in services}
        tasks: dict[str, list[tuple[ContainerSpec, ContainerStatus | None]]] = {s.id: [] for s in services}
        orphans = []
        for spec, status in containers:
            if not spec.service_id:
                continue
            if spec.service_id in by_id:
                tasks[spec.service_id].append((spec, status))
            else:
                orphans.append(spec.name)
        for name in orphans:                     # their service was removed
            await self._remove(name, fence)
        wakes = []
        # Tasks answer while their host's data plane does: up, or its agent alone down.
        up = {h.name for h in hosts if h.state != "down"}
        vips = {(v.network, v.service): v for v in await self.store.services.vips()}
        for service in services:
            eligible = [h for h in live if constraints.allows(service.constraints, h)]
            views = [task_view(spec, status) for spec, status in tasks[service.id]]
            changes = plan(service, views, eligible, dead, now, load)
            if not changes.remove and not changes.start:
                # A rolling update moves only while nothing else is to be done.
                step = rollout(service, [v for v in views if v.host not in dead], eligible, now, load)
                changes = Plan(step.remove, step.start, _earliest(changes.wake_at, step.wake_at))
                if step.state:
                    await self.store.services.set_update_state(service, step.state, step.message, fence)
            # The load balancers first: a task on its way out, or on a host that stopped
            # answering, takes no new connection from here on, before anything replaces it.
            for vip in backends(service, tasks[service.id], set(changes.remove), up):
                if vips.pop((vip.network, vip.service), None) != vip:
                    await self.store.services.put_vip(vip, fence)
            await self._apply(service, changes, fence)
            if changes.wake_at is not None:
                wakes.append(changes.wake_at)
        for stale in vips.values():              # their service or its network went
            await self.store.services.delete_vip(stale, fence)
        await self._mesh_legs(services, sorted(up), fence)
        await self._release_dead_hosts(now)
        return min(wakes) if wakes else None

    async def _release_dead_hosts(self, now: float) -> None:
        """Free what the removed containers of hosts down for `release_after` still hold."""
        if not self.release_after:
            return
        for host, since in sorted(self._down_since.items()):
            if now - since < self.release_after or now - self._released_at.get(host, 0.0) < RELEASE_RECHECK:
                continue
            self._released_at[host] = now
            for name in await self.store.pending_releases(host):
                if await self.store.release_container(name, host):
                    log.info("freed what container %s held: its host %s has been down for %.0fs",
                             name, host, now - since)

    async def _mesh_legs(self, services: list[ServiceSpec], up: list[str], fence: Fence) -> None:
        """Every live host gets a leg into each network of the routing mesh (the first
        network of each service publishing in ingress mode); a network without such
        a service loses its legs. A host that is down keeps its leg for its return."""
        meshed = {s.networks[0] for s in services if s.ports and s.publish_mode == "ingress" and s.networks}
        legs = {(leg.network, leg.host): leg for leg in await self.store.services.legs()}
        for (network, _), leg in legs.items():
            if network not in meshed:
                await self.store.services.remove_leg(leg, fence)
        for network in sorted(meshed):
            for host in up:
                if (network, host) not in legs:
                    try:
                        await self.store.services.add_leg(network, host, fence)
                    except NotLeader:
                        raise
                    except UserError as err:     # the host or network went meanwhile
                        log.warning("mesh leg of %s on %s: %s", host, network, err)

    def _liveness(self, hosts: list[Host], now: float) -> tuple[list[str], set[str]]:
        """(hosts new tasks may go to, hosts whose tasks are rescheduled). A host is
        live while "up"; dead once it has been "down" (out of every table, as the
        liveness rule decided, controller/liveness.py) for the grace as this leader
        saw it; "agent down" (its data plane still forwards) is neither: its tasks
        stay, new ones go elsewhere."""
        live, dead = [], set()
        for host in hosts:
            if host.state != "down":
                self._down_since.pop(host.name, None)
                if host.state == "up":
                    live.append(host.name)
            elif now - self._down_since.setdefault(host.name, now) >= self.grace:
                dead.add(host.name)
        return sorted(live), dead

    async def _apply(self, service: ServiceSpec, changes: Plan, fence: Fence) -> None:
        for name in changes.remove:
            await self._remove(name, fence)
        for start in changes.start:
            await self._start(service, start, fence)

    async def _remove(self, name: str, fence: Fence) -> None:
        with contextlib.suppress(NotFound):      # gone already (`rm` by hand)
            await self.store.delete_container(name, fence=fence)
            log.info("removed task %s", name)

    async def _start(self, service: ServiceSpec, start: Start, fence: Fence) -> None:
        name = rules.task_name(service, start.slot, start.host)
        options = RunOptions(
            memory_bytes=service.memory_bytes,
            # --publish mode=host: each task's own host port, where it runs.
            ports=tuple(service.ports) if service.publish_mode == "host" else (),
            health_cmd=service.health_cmd, health_interval=service.health_interval,
            health_timeout=service.health_timeout, health_retries=service.health_retries,
            no_healthcheck=service.no_healthcheck,
            image=RunImage(service.image_reference, service.image_digest, service.image_id,
                           tuple(service.exposed_ports)))
        # Its image's HEALTHCHECK, read when the image was resolved, unless the service has its own or none.
        options = with_image_health(options, image_health(service))
        try:
            await self.store.create_container(
                name, start.host, list(service.command), dict(service.env), name.rsplit(".", 1)[1],
                NetworkMode.parse(service.networks), options,
                task=TaskOrigin(service.name, service.id, start.slot, start.restarts, service.version),
                fence=fence)
            log.info("started task %s on %s", name, start.host)
        except NotLeader:
            raise
        except UserError as err:                 # the host went away meanwhile: the next pass places it again
            log.warning("could not start task %s on %s: %s", name, start.host, err)


def backends(service: ServiceSpec, tasks: list[tuple[ContainerSpec, ContainerStatus | None]],
             leaving: set[str], up: set[str]) -> list[ServiceVip]:
    """Per network of `service`, its VIP ("" in dnsrr mode) with the addresses of its
    tasks that take connections: running, on a host that is up, and not about to
    be removed. The records are what a resolver answers too: the service's name
    with the VIP (or, dnsrr, the backends), tasks.NAME with the backends."""
    out = []
    for network in sorted(service.networks):
        vip = service.virtual_ips.get(network, "")
        addresses = sorted(
            (a.ip for spec, status in tasks
             if spec.name not in leaving and spec.host in up and status is not None and status.id == spec.id
             and status.state == "running" and status.health in ("", "healthy")
             for a in spec.attachments if a.network == network),
            key=ipaddress.ip_address)
        mesh = service.publish_mode == "ingress" and network == service.networks[0]
        out.append(ServiceVip(network=network, service=service.name, service_id=service.id, vip=vip,
                              backends=addresses, ports=list(service.ports) if mesh else []))
    return out


def image_health(service: ServiceSpec) -> HealthSettings | None:
    if not service.image_health_cmd:
        return None
    return HealthSettings(service.image_health_cmd, service.image_health_interval, service.image_health_timeout,
                          service.image_health_retries, service.image_health_start_period)


def task_view(spec: ContainerSpec, status: ContainerStatus | None) -> TaskView:
    """A task's container and its agent's last report, as the scheduler reads them."""
    current = status if status is not None and status.id == spec.id else None
    if current is None:
        return TaskView(spec.name, spec.slot, spec.host, since=spec.created_at, restarts=spec.restarts,
                        version=spec.service_version)
    error = current.error or ("the health check failed" if current.health == "unhealthy" else "")
    return TaskView(spec.name, spec.slot, spec.host, state=current.state, exit_code=current.exit_code,
                    error=error, since=current.finished_at or spec.created_at, restarts=spec.restarts,
                    version=spec.service_version, unhealthy=current.health == "unhealthy")


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None
