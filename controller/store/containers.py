"""Containers: their specs, what they attach to and publish, and the agents' reports.

A container's spec, one address per network (with what its driver writes
for it), its published host ports and an initial status are written in one
transaction, so a container exists with all it holds or not at all.
"""
from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from controller.etcd import Compare, Op, Txn
from controller.run_options import RunOptions, check_aliases, check_options
from controller.store import allocations
from controller.store.fence import Fence
from controller.store.records import Records
from controller.store.removal import spec_deletion
from controller.store.requests import Request, Requests
from controller.store.transaction import ALLOCATION_ATTEMPTS, Commit, Settled, retrying, surface_unavailable
from proto import validate
from proto.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from proto.network_mode import NetworkMode
from proto.records import ContainerSpec, ContainerStatus, Endpoint

DESIRED_STATES = ("running", "stopped")
# The state an agent reports for a container whose process is gone (agent/oci/model.py).
EXITED = "exited"


@dataclass(frozen=True)
class TaskOrigin:
    """What makes a container a service's task (the ContainerSpec fields of the same names)."""
    service: str
    service_id: str
    slot: int
    restarts: int = 0
    service_version: int = 0


class Containers:
    def __init__(self, records: Records, requests: Requests) -> None:
        self.records = records
        self.keys = records.keys
        self.etcd = records.etcd
        self.requests = requests

    @surface_unavailable
    async def create(
        self,
        name: str,
        host: str,
        command: list[str],
        env: dict[str, str],
        hostname: str,
        networks: Iterable[str] | NetworkMode,
        options: RunOptions = RunOptions(),
        request_id: str = "",
        *,
        task: TaskOrigin | None = None,
        fence: Fence | None = None,
    ) -> ContainerSpec:
        """Write the container's spec, one address per network, what each network's
        driver writes for it, its published host ports and an initial "created"
        status, all at once. An empty hostname means the name; `networks` are the
        --network values or the mode they were parsed into (none given means
        Docker's default "bridge"). With `request_id`, a repeat of a request
        already carried out returns the container it made (requests.py). A
        service's task says so in `task`, and is written only while `fence`
        (its leader's term) holds."""
        validate.name("container", name)
        if not host:
            raise InvalidArgument(f"no host given for container {name!r}")
        mode = networks if isinstance(networks, NetworkMode) else NetworkMode.parse(networks)
        check_options(options, mode)
        key, status_key = self.keys.container(name), self.keys.status(name)

        async def attempt(lost: int) -> Commit[ContainerSpec] | Settled[ContainerSpec]:
            if fence is not None:
                await fence.check(self.etcd)
            # Four independent reads at once: one etcd round trip on the run's path, not four.
            # Their answers are then taken in the order they matter.
            done, existing, removing, host_found = await asyncio.gather(
                self.requests.get(request_id), self.etcd.get(key), self.etcd.get(status_key),
                self.records.host(host), return_exceptions=True)
            for read in (done, existing, removing):
                if isinstance(read, BaseException):
                    raise read
            if done is not None:
                return Settled(await self.made_by(done, name))
            if existing is not None:
                raise AlreadyExists(f"container {name!r} already exists")
            if removing is not None:
                raise FailedPrecondition(
                    f"container {name!r} was removed but its host has not yet confirmed it is gone; "
                    "try again shortly")
            if isinstance(host_found, BaseException):
                raise host_found
            host_kv, host_record = host_found
            spec = ContainerSpec(
                id=secrets.token_hex(32), name=name, host=host, command=list(command), env=dict(env),
                hostname=hostname or name, desired="running", created_at=time.time(), network_mode=mode.text,
                mounts=list(options.mounts), memory_bytes=options.memory_bytes,
                cpus=options.cpus, pids_limit=options.pids_limit, stop_timeout=options.stop_timeout,
                **_image_and_process(options), **(dataclasses.asdict(task) if task else {}))
            txn = Txn([Compare.absent(key), Compare.absent(status_key),
                       # Endpoints copy the host's VTEP: a re-registration must not slip in between.
                       Compare.mod_revision(host_kv.key, "=", host_kv.mod_revision)])
            if fence is not None:
                txn.compares.append(fence.compare)
            if mode.shares_container:
                await self._check_namespace_owner(spec, mode.container)
            for index, network in enumerate(mode.networks):
                # --ip is the address on the first network, as Docker's.
                txn.add(await allocations.attach(self.records, spec, network, host_record, randomize=lost > 0,
                                                 aliases=options.aliases, ip=options.ip if index == 0 else ""))
            txn.add(await allocations.publish(self.records, spec, options.ports, randomize=lost > 0))
            status = ContainerStatus(name=name, id=spec.id, state="created")
            txn.ops += [Op.put(key, spec.to_json()), Op.put(status_key, status.to_json())]
            if request_id:
                compares, ops = await self.requests.record(
                    Request(request_id, "run", name, spec.id, time.time()))
                txn.compares += compares
                txn.ops += ops
            return Commit(txn, spec)

        return await retrying(self.etcd, attempt, what=f"create container {name!r}",
                              changing="the addresses and ports it needs", attempts=ALLOCATION_ATTEMPTS)

    @surface_unavailable
    async def made_by(self, done: Request, name: str) -> ContainerSpec:
        """The container a request already carried out made or changed, as it is now."""
        if done.name != name:
            raise InvalidArgument(f"request id {done.id!r} was used for container {done.name!r}, not {name!r}")
        found = await self.records.record(self.keys.container(name), ContainerSpec)
        if found is None or found[1].id != done.container_id:
            raise FailedPrecondition(f"request {done.id!r} was carried out on container {name!r}, "
                                     "which has been removed since")
        return found[1]

    async def _check_namespace_owner(self, spec: ContainerSpec, owner: str) -> None:
        """--network container:OWNER: OWNER exists, on the same host."""
        if owner == spec.name:
            raise InvalidArgument(f"container {spec.name!r} cannot join its own network namespace")
        found = await self.records.record(self.keys.container(owner), ContainerSpec)
        if found is None:
            raise NotFound(f"--network container:{owner}: no such container {owner!r}")
        if found[1].host != spec.host:
            raise FailedPrecondition(
                f"--network container:{owner}: container {owner!r} runs on host {found[1].host!r}, "
                f"not {spec.host!r}; a network namespace cannot be shared across hosts")

    @surface_unavailable
    async def connect(self, container: str, network: str, aliases: tuple[str, ...] = (),
                      ip: str = "", request_id: str = "") -> ContainerSpec:
        """Attach a (running or stopped) container to one more network. With
        `request_id`, a repeat of a connect already made returns the spec as it is."""
        validate.name("network", network)
        check_aliases(aliases)

        async def attempt(lost: int) -> Commit[ContainerSpec] | Settled[ContainerSpec]:
            done = await self.requests.get(request_id)
            if done is not None:
                done.check_same("network connect", container, network)
                return Settled(await self.made_by(done, container))
            kv, spec = await self.records.container(container)
            mode = NetworkMode.of(spec)
            if not mode.attaches:
                raise FailedPrecondition(
                    f"container {container!r} uses --network {mode.text}: it has no interfaces "
                    "of its own to connect")
            if network in spec.networks:
                raise AlreadyExists(f"container {container!r} is already connected to network {network!r}")
            host_kv, host = await self.records.host(spec.host)
            updated = dataclasses.replace(spec, attachments=list(spec.attachments))
            # A stopped container's new endpoint says so; a report landing
            # meanwhile (the status guard below) makes this attempt again.
            status = await self.records.record(self.keys.status(spec.name), ContainerStatus)
            running = status is not None and status[1].state == "running"
            txn = await allocations.attach(self.records, updated, network, host, randomize=lost > 0,
                                           aliases=aliases, ip=ip, stopped=not running)
            txn.compares += [Compare.mod_revision(kv.key, "=", kv.mod_revision),
                             Compare.mod_revision(host_kv.key, "=", host_kv.mod_revision),
                             Compare.absent(self.keys.status(spec.name)) if status is None else
                             Compare.mod_revision(status[0].key, "=", status[0].mod_revision)]
            txn.ops.append(Op.put(kv.key, updated.to_json()))
            if request_id:
                txn.add(Txn(*await self.requests.record(
                    Request(request_id, "network connect", container, spec.id, time.time(), network=network))))
            return Commit(txn, updated)

        return await retrying(self.etcd, attempt, what=f"connect {container!r} to {network!r}",
                              changing="the state", attempts=ALLOCATION_ATTEMPTS)

    @surface_unavailable
    async def disconnect(self, container: str, network: str, request_id: str = "") -> ContainerSpec:
        """Detach a container from a network; its address is free again at once. With
        `request_id`, a repeat of a disconnect already made returns the spec as it is."""
        async def attempt(_: int) -> Commit[ContainerSpec] | Settled[ContainerSpec]:
            done = await self.requests.get(request_id)
            if done is not None:
                done.check_same("network disconnect", container, network)
                return Settled(await self.made_by(done, container))
            kv, spec = await self.records.container(container)
            attachment = next((a for a in spec.attachments if a.network == network), None)
            if attachment is None:
                raise NotFound(f"container {container!r} is not connected to network {network!r}")
            _, net = await self.records.network(network)
            updated = dataclasses.replace(spec, attachments=[a for a in spec.attachments if a is not attachment])
            ops = [Op.put(kv.key, updated.to_json())] + allocations.detach(self.records, spec, net, attachment)
            txn = Txn([Compare.mod_revision(kv.key, "=", kv.mod_revision)], ops)
            if request_id:
                txn.add(Txn(*await self.requests.record(
                    Request(request_id, "network disconnect", container, spec.id, time.time(), network=network))))
            return Commit(txn, updated)

        return await retrying(self.etcd, attempt, what=f"disconnect {container!r} from {network!r}")

    @surface_unavailable
    async def get(self, name: str) -> tuple[ContainerSpec, ContainerStatus | None]:
        _, spec = await self.records.container(name)
        found = await self.records.record(self.keys.status(name), ContainerStatus)
        return spec, None if found is None else found[1]

    @surface_unavailable
    async def list_all(self) -> list[tuple[ContainerSpec, ContainerStatus | None]]:
        specs, _ = await self.records.records(self.keys.containers(), ContainerSpec)
        statuses, _ = await self.records.records(self.keys.statuses(), ContainerStatus)
        by_name = {status.name: status for _, status in statuses}
        return [(spec, by_name.get(spec.name)) for _, spec in specs]

    @surface_unavailable
    async def set_desired(self, name: str, desired: str, bump_generation: bool = False,
                          stop_timeout: int | None = None, request_id: str = "") -> ContainerSpec:
        """Change what the agent should do; a generation bump makes it restart the container.
        With `request_id`, a repeat changes nothing more and returns the spec as it is."""
        if desired not in DESIRED_STATES:
            raise InvalidArgument(f"invalid desired state {desired!r}: use one of {', '.join(DESIRED_STATES)}")

        async def attempt(lost: int) -> Commit[ContainerSpec] | Settled[ContainerSpec]:
            done = await self.requests.get(request_id)
            if done is not None:
                return Settled(await self.made_by(done, name))
            kv, spec = await self.records.container(name)
            updated = dataclasses.replace(
                spec, desired=desired, generation=spec.generation + (1 if bump_generation else 0),
                stop_timeout=spec.stop_timeout if stop_timeout is None else stop_timeout,
                ports=list(spec.ports))
            txn = Txn([Compare.mod_revision(kv.key, "=", kv.mod_revision)])
            if desired == "running" and spec.ports:
                # A stopped container gave its host ports back (put_status): take them again.
                txn.add(await allocations.retake(self.records, updated, randomize=lost > 0))
            txn.ops.append(Op.put(kv.key, updated.to_json()))
            if request_id:
                compares, ops = await self.requests.record(
                    Request(request_id, "start" if desired == "running" else "stop", name, spec.id, time.time()))
                txn.compares += compares
                txn.ops += ops
            return Commit(txn, updated)

        return await retrying(self.etcd, attempt, what=f"update container {name!r}",
                              changing="the published ports", attempts=ALLOCATION_ATTEMPTS)

    @surface_unavailable
    async def put_status(self, host: str, status: ContainerStatus) -> bool:
        """Store an agent's report; False (nothing written) when the container is
        unknown, runs elsewhere, or is a different container under a reused name."""
        async def attempt(_: int) -> Commit[bool] | Settled[bool]:
            found = await self.records.record(self.keys.container(status.name), ContainerSpec)
            if found is None:
                return Settled(False)
            kv, spec = found
            if spec.host != host or (status.id and status.id != spec.id):
                return Settled(False)
            ops = [Op.put(self.keys.status(status.name), status.to_json())]
            # Only a report on the current start: a late one from before a
            # `start` must not free the ports that start took.
            if status.state == EXITED and spec.ports and status.generation >= spec.generation:
                # As Docker: a container that stopped no longer holds its host
                # ports; `start` takes them again (allocations.retake).
                held = await allocations.ports_taken(self.records, spec.host)
                ops += [Op.delete(self.keys.port(spec.host, p.protocol, p.host_port)) for p in spec.ports
                        if held.get((p.protocol, p.host_port)) == spec.name]
            compares = [Compare.mod_revision(kv.key, "=", kv.mod_revision)]
            if status.state == EXITED and spec.auto_remove and status.generation >= spec.generation:
                # run -d --rm: gone with its exit, as a `rm` would take it (see removal.py).
                ops += await spec_deletion(self.records, kv, spec)
            elif status.generation >= spec.generation:
                endpoint_compares, endpoint_ops = await self._endpoints_follow(spec, status.state == "running")
                compares += endpoint_compares
                ops += endpoint_ops
            return Commit(Txn(compares, ops), True)

        return await retrying(self.etcd, attempt, what=f"record the status of container {status.name!r}")

    async def _endpoints_follow(self, spec: ContainerSpec, running: bool) -> tuple[list[Compare], list[Op]]:
        """The container's endpoint rows marked as running or not, where they say
        otherwise: the other hosts' embedded DNS answers its names only while it
        runs, as Docker's does (a stopped container leaves its networks' DNS)."""
        compares, ops = [], []
        for attachment in spec.attachments:
            found = await self.records.record(self.keys.endpoint(attachment.network, spec.name), Endpoint)
            if found is None or found[1].stopped == (not running):
                continue        # a driver that writes no row (a bridge), or already right
            kv, endpoint = found
            compares.append(Compare.mod_revision(kv.key, "=", kv.mod_revision))
            ops.append(Op.put(kv.key, dataclasses.replace(endpoint, stopped=not running).to_json()))
        return compares, ops


def _image_and_process(options: RunOptions) -> dict:
    """The spec's fields for the image, the process's overrides and the confinement."""
    image = options.image
    return dict(
        image=image.reference, image_digest=image.digest, image_id=image.id,
        exposed_ports=list(image.exposed_ports), entrypoint=list(options.entrypoint),
        entrypoint_set=options.entrypoint_set, working_dir=options.working_dir, user=options.user,
        read_only=options.read_only, cap_add=list(options.cap_add), cap_drop=list(options.cap_drop),
        privileged=options.privileged, seccomp=options.seccomp, seccomp_profile=options.seccomp_profile,
        allow_new_privileges=options.allow_new_privileges, ulimits=list(options.ulimits),
        labels=dict(options.labels), auto_remove=options.remove_on_exit,
        restart_policy=options.restart_policy, restart_max_retries=options.restart_max_retries,
        health_cmd=options.health_cmd, health_interval=options.health_interval,
        health_timeout=options.health_timeout, health_retries=options.health_retries,
        open_stdin=options.open_stdin, tty=options.tty,
        health_start_period=options.health_start_period, no_healthcheck=options.no_healthcheck)
