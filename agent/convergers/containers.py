"""This host's containers: the desired ones against what the runtime runs.

Pulls their images (container_images.py), starts, stops and tears down
containers (agent/oci: crun under conmon), builds their interfaces while
they run (container_interfaces.py), wakes the loop when one exits, and
reports each one's state to the controller. Every container has a local
record (agent/local_state.py), written before anything is built for it, so
an agent that dies half-way finds after its restart what to finish or
remove, even when the controller has forgotten the container.

An engine's endpoint (spec.engine: Docker's, a CNI runtime's) runs nothing:
it is wired while its engine has joined it (agent/engines/ names the
engine's namespace here first) and reported running exactly then.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from agent import container_network as plan
from agent import names, restart_policy
from agent.container_config import container_config
from agent.convergers.container_images import ContainerImages
from agent.convergers.container_interfaces import ContainerInterfaces
from agent.convergers.embedded_dns import EmbeddedDns
from agent.health import HealthChecks
from agent.host_networks import HostNetworks
from agent.images.image import Image
from agent.images.store import ImageStore
from agent.kernel.netns import list_netns, netns_exists, netns_path, remove_netns
from agent.local_state import LocalContainer, LocalState
from agent.oci.model import EXITED, ContainerError
from agent.oci.runtime import Runtime
from agent.view import View
from proto import network_mode, timing
from proto.errors import ImageError
from proto.addresses import next_free_ip, parse_subnet
from proto.network_mode import NetworkMode
from proto.records import ContainerSpec, ContainerStatus, Network

log = logging.getLogger(__name__)

# --network container:A where A itself uses container:B ...: how deep to follow.
MAX_NETWORK_CHAIN = 8
# Docker's exit codes of a container whose command never ran.
EXIT_START_FAILED = 125
EXIT_NOT_FOUND = 127


class Containers:
    def __init__(self, host: HostNetworks, view: View, runtime: Runtime, images: ImageStore,
                 local: LocalState, report: Callable[[ContainerStatus], None], wake: Callable[[], None],
                 dns: EmbeddedDns | None = None):
        self.host = host
        self.view = view
        self.runtime = runtime
        self.images = ContainerImages(images, host.host, wake)
        self.local = local
        self._report = report   # queues a status for the controller
        self._wake = wake       # asks the loop for a pass
        self.interfaces = ContainerInterfaces(host)
        self.dns = dns          # the embedded DNS: a listener in each namespace, the /etc files
        self.health = HealthChecks(runtime, wake)
        self._stopping: dict[str, asyncio.Task] = {}
        self._exit_watches: dict[str, asyncio.Task] = {}
        # Images nobody uses are looked for after a teardown, and once after a
        # (re)start of the agent, which may have died between the two.
        self._drop_images = True
        # Engines' endpoints wired now: name -> the sandbox they were wired into
        # (agent/engines/ waits on it before answering the engine).
        self.wired: dict[str, str] = {}
        # Engines' endpoints whose namespace agent/engines/ is naming now, before
        # the controller has their join: a pass reading the view from before must
        # not take that name for a leftover of a leave.
        self.adopting: set[str] = set()
        self.wired_at: dict[str, float] = {}    # when each was wired: its "started" time
        # Network namespaces made new by this pass's starts (empty: see take_made_namespaces).
        self.made_namespaces: set[str] = set()

    def forget(self) -> None:
        self.interfaces.forget()

    async def remove_gone(self, desired: dict[str, ContainerSpec],
                          local: dict[str, LocalContainer]) -> list[ContainerSpec]:
        """Tear down every local container the view no longer has (or has under a new id);
        returns their specs, to report "removed" once the pass is through."""
        removed = []
        for name, record in list(local.items()):
            if name not in desired or desired[name].id != record.spec.id:
                await self._teardown(record)
                removed.append(record.spec)
                local.pop(name)
                self._drop_images = True
        return removed

    def prepare(self, desired: dict[str, ContainerSpec], local: dict[str, LocalContainer],
                networks: dict[str, Network]) -> list[LocalContainer]:
        """Give every desired container its record in `local`, with its interface names
        and gwbridge address chosen and saved before anything is built for it. Returns
        the records of those whose interfaces can be planned (every network known):
        what port security guards before converge() builds them."""
        planned = []
        for spec in desired.values():
            record = local.get(spec.name) or LocalContainer(spec=spec)
            record.spec = spec
            local[spec.name] = record
            if spec.networks and any(n not in networks for n in spec.networks):
                self.local.save(record)
                continue  # the network records are on their way in the stream
            if NetworkMode.of(spec).attaches:
                plan.assign_ifnames(record, spec, networks)
                if plan.GWBRIDGE_KEY not in record.ifnames:
                    record.gw_ip = ""
                elif not record.gw_ip:
                    record.gw_ip = self._free_gw_ip()
                planned.append(record)
            # Written before building anything, so a crash leaves a record to clean up from.
            self.local.save(record)
        return planned

    async def converge(self, desired: dict[str, ContainerSpec], local: dict[str, LocalContainer],
                       networks: dict[str, Network], began: float,
                       guarded: Awaitable[None] | None = None) -> list[LocalContainer]:
        """Start, stop and wire every desired container, from the records prepare() left
        in `local`. Returns the records of those running with interfaces of their own:
        the containers whose published ports lead in. `guarded`: port security's pass
        over the records, which every interface to be made waits for (the rest of a
        start, its image and namespace and the runtime's create, goes on beside it)."""
        modes = {name: NetworkMode.of(spec) for name, spec in desired.items()}
        published = []
        # Owners of a shared network namespace first, so joiners find it built.
        for spec in sorted(desired.values(), key=lambda s: modes[s.name].shares_container):
            running = await self._converge(spec, modes, networks, local[spec.name], desired, began, guarded)
            if running and modes[spec.name].attaches:
                published.append(local[spec.name])
        return published

    def take_made_namespaces(self) -> set[str]:
        """The namespaces made new since the last call: the load balancers need not
        clear a table in them (agent/convergers/service_lb.py)."""
        made, self.made_namespaces = self.made_namespaces, set()
        return made

    async def remove_orphans(self, records: Iterable[LocalContainer]) -> None:
        """Namespaces, containers and images no record explains (a crash between
        creating and recording, or between removing and forgetting)."""
        records = list(records)
        known = {names.container_netns(self.host.host, r.spec.id) for r in records}
        for netns in list_netns(names.netns_prefix(self.host.host) + "c"):
            if netns not in known:
                log.info("removing orphan namespace %s", netns)
                await remove_netns(netns)
        for container_id in await self.runtime.remove_orphans({r.spec.id for r in records}):
            log.info("removed orphan container %s", container_id[:12])
        if self._drop_images:
            await self.images.drop_unused(r.spec.pinned_image for r in records)
            self._drop_images = False

    async def report(self, desired: dict[str, ContainerSpec], local: dict[str, LocalContainer]) -> None:
        for spec in desired.values():
            await self._report_one(spec, local[spec.name])

    def report_removed(self, removed: Iterable[ContainerSpec]) -> None:
        for spec in removed:
            self._report(ContainerStatus(name=spec.name, id=spec.id, host=self.host.host,
                                         state="removed", finished_at=time.time()))

    # ---- one container -----------------------------------------------------

    async def _converge(self, spec: ContainerSpec, modes: dict[str, NetworkMode],
                        networks: dict[str, Network], record: LocalContainer,
                        desired: dict[str, ContainerSpec], began: float,
                        guarded: Awaitable[None] | None = None) -> bool:
        """Whether the container runs after this pass."""
        mode = modes[spec.name]
        if spec.networks and any(n not in networks for n in spec.networks):
            return False  # the network records are on their way in the stream
        if spec.engine:
            return await self._converge_engine(spec, networks, record, guarded)
        state = await self.runtime.state(spec.id)
        running = state is not None and state.state == "running"
        # A container the runtime does not know is started, unless its image
        # could not be pulled: that waits for the next `start`.
        start = spec.desired == "running" and not running and (
            record.started_generation < spec.generation or (state is None and not record.image_error))
        restart = (not start and spec.desired == "running" and state is not None and state.state == EXITED
                   and self._restart_due(spec, state, record))
        start = start or restart
        building = time.time()
        image = None
        if start:
            # Its image checked (or its pull begun) while its namespace is made: the
            # runtime creates the container in it. Without an image yet, the
            # namespace goes again below, with everything of a container not running.
            image, made = await asyncio.gather(self._image(spec, record), self.interfaces.namespace(spec, mode))
            if made is not None:
                self.made_namespaces.add(made)
        start = image is not None
        wiring: asyncio.Task[float] | None = None
        if start:
            self.interfaces.forget(spec.name)  # a (re)start always checks its network
            # The rest of its network while the runtime prepares and creates the
            # container: the runtime starts the command only once this is done.
            wiring = asyncio.create_task(self._wire(spec, mode, networks, record, guarded),
                                         name=f"wire-{spec.name}")
        elif running:
            await self._wire(spec, mode, networks, record, guarded)
        if start:
            built = time.time()
            if restart:
                record.backoff_step = restart_policy.next_step(record.backoff_step, state.started_at,
                                                               state.finished_at) + 1
                record.restart_count += 1
                log.info("restarting container %s (restart %d, policy %s)", spec.name, record.restart_count,
                         spec.restart_policy)
            try:
                running = await self._start(spec, image, record, modes, desired, networks, wiring)
            finally:
                wired = await wiring   # its error, if any, fails the pass (a start that failed first waits for it)
            # One event per start, with wall-clock stamps to line up with the controller's `run` event
            # (`built`: its image checked, its namespace made, the runtime begun; `wired`: its
            # interfaces done meanwhile).
            timing.emit(log, timing.CONTAINER_STARTED, container=spec.name, host=self.host.host,
                        update=self.view.updated_at, began=began, network=building, built=built,
                        wired=wired, process=time.time())
        elif running and spec.desired != "running" and spec.name not in self._stopping:
            self._stopping[spec.name] = asyncio.create_task(self._stop(spec))
        if not running:
            # As Docker: a container that is not running has no interfaces (a
            # container sharing its namespace keeps just lo).
            await self.interfaces.release(spec)
            if self.dns is not None:
                self.dns.stop(spec.id)
        else:
            self._watch_exit(spec)
        if self.dns is not None:
            self.dns.follow(spec.id, running)   # its names resolve while it runs
        self.health.follow(spec, running)
        return running

    async def _converge_engine(self, spec: ContainerSpec, networks: dict[str, Network],
                               record: LocalContainer, guarded: Awaitable[None] | None = None) -> bool:
        """Wired while joined: into its namespace, named here, or (Docker, before it has
        made the namespace) handed over in the host's; else nothing of it stays."""
        joined = bool(spec.sandbox) and (not spec.interface or netns_exists(
            names.container_netns(self.host.host, spec.id)))
        if joined:
            await self.interfaces.build_engine(spec, networks, record, guarded)
            if self.wired.get(spec.name) != spec.sandbox:
                self.wired_at[spec.name] = time.time()
            self.wired[spec.name] = spec.sandbox
        else:
            self.wired.pop(spec.name, None)
            if not spec.sandbox and spec.name not in self.adopting:
                await self.interfaces.release_engine(spec)
        if self.dns is not None:
            self.dns.follow(spec.id, joined)    # named while its engine has it joined
        return joined

    async def _wire(self, spec: ContainerSpec, mode: NetworkMode, networks: dict[str, Network],
                    record: LocalContainer, guarded: Awaitable[None] | None = None) -> float:
        """The container's interfaces, and its DNS listener (before the process starts:
        its first query must find it). Returns when it was done."""
        await self.interfaces.build(spec, mode, networks, record, guarded)
        if self.dns is not None and mode.own_namespace:
            await self.dns.serve(spec, networks)
        return time.time()

    def _restart_due(self, spec: ContainerSpec, state, record: LocalContainer) -> bool:
        """Whether the exited container's restart policy starts it now; when later, a pass is
        asked for then."""
        at = restart_policy.due(spec.restart_policy, spec.restart_max_retries, state.exit_code,
                                record.restart_count, record.backoff_step, state.started_at, state.finished_at)
        if at is None:
            return False
        wait = at - time.time()
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, self._wake)
            return False
        return True

    def _free_gw_ip(self) -> str:
        """This host's next free gwbridge address: the gwbridge is per host, so
        every local record's address is taken."""
        gw = self.host.gwbridge
        taken = {r.gw_ip for r in self.local.load_all().values() if r.gw_ip}
        return next_free_ip(parse_subnet(gw.subnet, "gwbridge subnet", bounded=False), gw.gateway, taken,
                            network=gw.name)

    def _netns_for(self, spec: ContainerSpec, modes: dict[str, NetworkMode],
                   desired: dict[str, ContainerSpec]) -> str:
        """The network namespace path the container joins ("" = this host's own)."""
        current = spec
        for _ in range(MAX_NETWORK_CHAIN):
            mode = modes[current.name]
            if mode.kind == network_mode.HOST:
                return ""
            if not mode.shares_container:
                return netns_path(names.container_netns(self.host.host, current.id))
            owner = desired.get(mode.container)
            if owner is None:
                raise ContainerError(f"cannot join the network of container {mode.container!r}: "
                                     f"it does not exist on host {self.host.host}")
            if modes[owner.name].own_namespace and not netns_exists(
                    names.container_netns(self.host.host, owner.id)):
                raise ContainerError(
                    f"cannot join the network of container {mode.container!r}: it is not running")
            current = owner
        raise ContainerError(f"container {spec.name!r}: --network container: chain is too long")

    async def _image(self, spec: ContainerSpec, record: LocalContainer) -> Image | None:
        """The container's image; None while it is pulled, or when it cannot be (the
        container's start error then, as `run` reports it)."""
        try:
            return await self.images.get(spec.pinned_image)
        except ImageError as err:
            record.started_generation = spec.generation
            record.error = str(err)
            record.image_error = True
            log.warning("container %s cannot start: %s", spec.name, err)
            self.local.save(record)
            return None

    async def _start(self, spec: ContainerSpec, image: Image, record: LocalContainer,
                     modes: dict[str, NetworkMode], desired: dict[str, ContainerSpec],
                     networks: dict[str, Network], wiring: Awaitable[float]) -> bool:
        record.started_generation = spec.generation
        record.image_error = False
        try:
            config = container_config(spec, image, self._netns_for(spec, modes, desired))
            if self.dns is not None:
                # --network container:NAME shares NAME's files, as its namespace.
                owner = desired.get(modes[spec.name].container, spec) if modes[spec.name].shares_container else spec
                hosts, resolv = self.dns.files(owner, networks)
                config = dataclasses.replace(config, hostname=owner.hostname or owner.name,
                                             hosts_entries=hosts, resolv_conf=resolv)
            state = await self.runtime.start(config, before_start=wiring)
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
            self._wake()

    def _watch_exit(self, spec: ContainerSpec) -> None:
        """Wake the loop when the container exits, so `ps -a` shows it at once."""
        task = self._exit_watches.get(spec.id)
        if task is not None and not task.done():
            return

        async def watch() -> None:
            await self.runtime.wait_exit(spec.id)
            self._wake()
        self._exit_watches[spec.id] = asyncio.create_task(watch(), name=f"exit-{spec.name}")

    async def _report_one(self, spec: ContainerSpec, record: LocalContainer) -> None:
        if spec.engine:
            self._report(ContainerStatus(name=spec.name, id=spec.id, host=self.host.host,
                                         networks=list(spec.networks), generation=spec.generation,
                                         state="running" if spec.name in self.wired else "created",
                                         started_at=self.wired_at.get(spec.name, 0.0)))
            return
        state = await self.runtime.state(spec.id)
        # A container never started (its image could not be pulled) has no
        # generation yet (-1 locally); the wire's is unsigned.
        status = ContainerStatus(name=spec.name, id=spec.id, host=self.host.host,
                                 generation=max(record.started_generation, 0), error=record.error,
                                 networks=list(spec.networks), image_error=record.image_error,
                                 restart_count=record.restart_count, health=self.health.state(spec.id))
        if state is not None:
            status.state = state.state
            status.pid = state.pid
            status.exit_code = state.exit_code
            status.started_at = state.started_at
            status.finished_at = state.finished_at
            status.oom_killed = state.oom_killed
        elif record.error:
            status.state = "created"
            status.exit_code = EXIT_START_FAILED if record.image_error else EXIT_NOT_FOUND
        self._report(status)

    async def _teardown(self, record: LocalContainer) -> None:
        spec = record.spec
        log.info("removing container %s (%s)", spec.name, spec.id[:12])
        if spec.engine:
            self.wired.pop(spec.name, None)
            await self.interfaces.release_engine(spec)
            self.local.delete(spec.name)
            return
        watch = self._exit_watches.pop(spec.id, None)
        if watch is not None:
            watch.cancel()
        self.health.drop(spec.id)
        state = await self.runtime.state(spec.id)
        if state is not None:
            if state.state == "running":
                await self.runtime.stop(spec.id, 0.0)  # rm -f: no grace period, as Docker
            await self.runtime.remove(spec.id)
        await self.interfaces.release(spec)
        if self.dns is not None:
            self.dns.stop(spec.id)
        self.local.delete(spec.name)
