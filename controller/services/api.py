"""The Services API (proto/vxmesh.proto): what `vxmesh service ...` asks.

It writes only the service records (store/services.py); the leading
controller's reconciler (reconciler.py) makes the tasks follow, so every
controller answers these calls whichever one leads. `ps` and `inspect` show
the tasks from the controller's mirror of etcd.
"""
from __future__ import annotations

import dataclasses
import secrets
import time
from typing import AsyncIterator

from controller.cache import StateCache
from controller.images.cluster_images import ClusterImages
from controller.images.service import NO_REGISTRY
from controller.run_options import RunImage
from controller.services import constraints, rules
from controller.store import Store
from controller.user_errors import user_errors, user_errors_streaming
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.errors import FailedPrecondition, InvalidArgument, UserError
from proto.records import PortMapping, ServiceSpec

# How long `service rm` waits for the leader to remove the tasks.
REMOVE_TIMEOUT = 20.0


class ServicesService(pb_grpc.ServicesServicer):
    def __init__(self, store: Store, cache: StateCache, images: ClusterImages | None,
                 containers=None) -> None:
        self.store = store
        self.cache = cache
        self.images = images
        self.containers = containers    # controller/api.py's service: a task's logs come from its host

    @user_errors
    async def Create(self, request, context):
        spec = rules.check(ServiceSpec.from_wire(request))
        if spec.mode == "global" and spec.replicas not in (0, 1):
            raise InvalidArgument("--replicas is for replicated services, not global ones")
        if self.images is None:
            raise FailedPrecondition(NO_REGISTRY)
        image = await self.images.resolve(spec.image)
        now = time.time()
        spec = dataclasses.replace(
            spec, id=secrets.token_hex(32), mode=spec.mode or "replicated",
            restart_condition=spec.restart_condition or "any", endpoint_mode=spec.endpoint_mode or "vip",
            publish_mode=spec.publish_mode or "ingress",
            virtual_ips={}, created_at=now, updated_at=now,
            image_reference=image.reference, image_digest=image.digest, image_id=image.id,
            exposed_ports=list(image.exposed_ports), **image_health_fields(image))
        return self._detail(await self.store.services.create(spec))

    @user_errors
    async def List(self, request, context):
        return pb.ServiceList(services=[self._detail(s) for s in await self.store.services.list_all()])

    @user_errors
    async def Inspect(self, request, context):
        return self._detail(await self.store.services.get(request.name))

    @user_errors
    async def Scale(self, request, context):
        if request.replicas > rules.MAX_REPLICAS:
            raise InvalidArgument(f"{request.replicas} replicas is too many (at most {rules.MAX_REPLICAS})")
        return self._detail(await self.store.services.scale(request.name, request.replicas))

    @user_errors
    async def Update(self, request, context):
        """A new template (image, command, env, networks, constraints, mode=host ports)
        starts a rolling update; replicas, routing-mesh ports and the update's own
        settings change at once."""
        current = await self.store.services.get(request.name)
        image = None
        if request.image:
            if self.images is None:
                raise FailedPrecondition(NO_REGISTRY)
            image = await self.images.resolve(request.image)
        if request.replicas > rules.MAX_REPLICAS:
            raise InvalidArgument(f"{request.replicas} replicas is too many (at most {rules.MAX_REPLICAS})")
        if request.replicas >= 0 and current.mode != "replicated":
            raise FailedPrecondition(f"service {request.name!r} runs in {current.mode} mode: it has no replicas")

        def change(spec: ServiceSpec) -> ServiceSpec:
            updated = dataclasses.replace(spec, env={**{k: v for k, v in spec.env.items() if k not in request.env_rm},
                                                     **request.env_add},
                                          networks=edited("network", spec.networks, request.network_rm,
                                                          request.network_add),
                                          constraints=edited("constraint", spec.constraints, request.constraint_rm,
                                                             request.constraint_add),
                                          ports=edited_ports(spec.ports, request.publish_rm, request.publish_add))
            if request.command_set:
                updated.command = list(request.command)
            if image is not None:
                updated = dataclasses.replace(updated, image=request.image, image_reference=image.reference,
                                              image_digest=image.digest, image_id=image.id,
                                              exposed_ports=list(image.exposed_ports), **image_health_fields(image))
            if request.replicas >= 0:
                updated.replicas = request.replicas
            if request.update_parallelism >= 0:
                updated.update_parallelism = request.update_parallelism
            if request.update_delay >= 0:
                updated.update_delay = request.update_delay
            rules.check(updated)
            # What the tasks carry: a change replaces them, a batch at a time. Ports of the
            # routing mesh are the balancers' (no task changes); mode=host ports are the tasks'.
            template = ("image_digest", "command", "env", "networks", "constraints") + (
                ("ports",) if updated.publish_mode == "host" else ())
            if any(getattr(updated, f) != getattr(spec, f) for f in template):
                updated = dataclasses.replace(updated, version=spec.version + 1, update_state="updating",
                                              update_message="")
            return updated

        return self._detail(await self.store.services.update(request.name, change))

    @user_errors
    async def Remove(self, request, context):
        spec = await self.store.services.remove(request.name)
        # Docker returns at once; waiting for the tasks to go makes `rm` then
        # `create` of the same name, or a network's removal, work right away.
        await self.cache.wait_until(lambda: not self._tasks(spec), REMOVE_TIMEOUT)
        return pb.Empty()

    @user_errors_streaming
    async def Logs(self, request, context) -> AsyncIterator[pb.LogChunk]:
        spec = await self.store.services.get(request.name)
        for task in self._tasks(spec):
            prefix = f"{task.name}@{task.host} | ".encode()
            pending = b""
            try:
                async for chunk in self.containers.logs(task.name):
                    lines = (pending + chunk.data).split(b"\n")
                    pending = lines.pop()
                    if lines:
                        yield pb.LogChunk(data=b"".join(prefix + line + b"\n" for line in lines))
            except UserError as err:          # its host is down: say so, go on with the others
                yield pb.LogChunk(data=prefix + f"(no logs: {err})\n".encode())
                continue
            if pending:
                yield pb.LogChunk(data=prefix + pending + b"\n")

    def _tasks(self, spec: ServiceSpec) -> list[pb.ServiceTask]:
        index = self.cache.index
        tasks = []
        for host in list(index.hosts.values()):
            for container in index.containers_on(host.name).values():
                if container.service_id != spec.id:
                    continue
                status = index.statuses.get(container.name)
                current = status if status is not None and status.id == container.id else None
                tasks.append(pb.ServiceTask(
                    name=container.name, service=spec.name, slot=container.slot, host=container.host,
                    state=current.state if current else "created",
                    exit_code=current.exit_code if current else 0, error=current.error if current else "",
                    restarts=container.restarts, started_at=current.started_at if current else 0.0,
                    addresses={a.network: a.ip for a in container.attachments}, version=container.service_version,
                    health=current.health if current else ""))
        return sorted(tasks, key=lambda t: (t.slot, t.host, t.name))

    def _detail(self, spec: ServiceSpec) -> pb.ServiceDetail:
        return pb.ServiceDetail(spec=spec.to_wire(), tasks=self._tasks(spec), desired_tasks=self._desired(spec))

    def _desired(self, spec: ServiceSpec) -> int:
        if spec.mode != "global":
            return spec.replicas
        return sum(1 for host in list(self.cache.index.hosts.values())
                   if host.state == "up" and constraints.allows(spec.constraints, host.name))


def image_health_fields(image: RunImage) -> dict:
    """The service's copy of its image's HEALTHCHECK (empty: none), for its tasks."""
    check = image.healthcheck
    if check is None:
        return dict(image_health_cmd="", image_health_interval=0.0, image_health_timeout=0.0,
                    image_health_retries=0, image_health_start_period=0.0)
    return dict(image_health_cmd=check.cmd, image_health_interval=check.interval,
                image_health_timeout=check.timeout, image_health_retries=check.retries,
                image_health_start_period=check.start_period)


def edited(what: str, current: list[str], removed, added) -> list[str]:
    """`current` without `removed`, then with `added` (Docker's order: --X-rm before --X-add)."""
    for item in removed:
        if item not in current:
            raise InvalidArgument(f"--{what}-rm {item}: the service has no such {what}")
    kept = [item for item in current if item not in removed]
    for item in added:
        if item in kept:
            raise InvalidArgument(f"--{what}-add {item}: the service has it already")
        kept.append(item)
    return kept


def edited_ports(current: list[PortMapping], removed, added) -> list[PortMapping]:
    """The published ports without those `removed` names (by published port and
    protocol), then with those `added`."""
    gone = {(p.protocol, p.host_port) for p in removed}
    for protocol, port in sorted(gone - {(p.protocol, p.host_port) for p in current}):
        raise InvalidArgument(f"--publish-rm {port}/{protocol}: the service does not publish it")
    return [p for p in current if (p.protocol, p.host_port) not in gone] + [PortMapping.from_wire(p) for p in added]
