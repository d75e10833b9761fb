"""`vxmesh service create|update|ls|ps|inspect|scale|rm|logs`: services (the Services API)."""
from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from typing import TYPE_CHECKING

from cli.commands.common import RPC_TIMEOUT
from cli.options import CliError, parse_duration, parse_env, parse_size
from cli.output import familiar, table
from proto import image_ref, validate
from proto import vxmesh_pb2 as pb
from proto.records import PortMapping, ServiceSpec

if TYPE_CHECKING:   # the annotations' stubs; the commands get cli/stubs.py's
    from proto import vxmesh_pb2_grpc as pb_grpc

# --update-parallelism 0: every task in one batch (a service has at most 1000).
ALL_AT_ONCE = 1000
# How long `service create` and `update` wait for the tasks before they give up
# (the service stays, and its leader goes on).
CONVERGE_SECONDS = 180.0
CONVERGE_POLL = 0.3


def parse_publish(text: str) -> tuple[PortMapping, str]:
    """Docker's --publish: PUBLISHED:TARGET[/PROTO], or published=P,target=T[,protocol=P][,mode=M];
    the mapping (host_port = PUBLISHED) and its mode (ingress or host)."""
    fields = {"mode": "ingress", "protocol": "tcp"}
    if "=" in text:
        for item in text.split(","):
            key, sep, value = item.partition("=")
            if not sep or key not in ("published", "target", "protocol", "mode"):
                raise CliError(f"invalid --publish {text!r}: unknown field {key!r} "
                               "(published, target, protocol, mode)")
            fields[key] = value
    else:
        ports, _, protocol = text.partition("/")
        published, sep, target = ports.partition(":")
        if not sep:
            raise CliError(f"invalid --publish {text!r}: use PUBLISHED:TARGET[/PROTO]")
        fields.update(published=published, target=target, protocol=protocol or "tcp")
    if fields["mode"] not in ("ingress", "host"):
        raise CliError(f"invalid --publish {text!r}: mode is ingress or host")
    try:
        mapping = PortMapping(validate.protocol(fields["protocol"]),
                              validate.port(int(fields.get("published", "")), "published port"),
                              validate.port(int(fields.get("target", "")), "target port"))
    except ValueError:
        raise CliError(f"invalid --publish {text!r}: give a published and a target port (1-65535)") from None
    return mapping, fields["mode"]


def create_request(args: argparse.Namespace) -> pb.ServiceSpec:
    image_ref.parse(args.image)
    if args.replicas is not None and args.replicas < 0:
        raise CliError(f"invalid --replicas {args.replicas}: it must be 0 or more")
    if args.restart_max_attempts < 0:
        raise CliError(f"invalid --restart-max-attempts {args.restart_max_attempts}: it must be 0 or more")
    if args.mode == "global" and args.replicas is not None:
        raise CliError("--replicas is for replicated services, not global ones")
    replicas = 1 if args.replicas is None else args.replicas
    published = [parse_publish(p) for p in args.publish]
    modes = {mode for _, mode in published}
    if len(modes) > 1:
        raise CliError("--publish: every port of a service is published in one mode (ingress or host)")
    return ServiceSpec(
        name=args.name, image=args.image, command=list(args.cmd), env=parse_env(args.env),
        networks=list(args.network), mode=args.mode, replicas=replicas if args.mode == "replicated" else 0,
        restart_condition=args.restart_condition, restart_max_attempts=args.restart_max_attempts,
        restart_delay=parse_duration(args.restart_delay, "--restart-delay"), constraints=list(args.constraint),
        memory_bytes=parse_size(args.limit_memory) if args.limit_memory else 0,
        endpoint_mode=args.endpoint_mode, ports=[p for p, _ in published],
        update_parallelism=_parallelism(args.update_parallelism),
        update_delay=parse_duration(args.update_delay, "--update-delay"),
        health_cmd=args.health_cmd, health_interval=parse_duration(args.health_interval, "--health-interval"),
        health_timeout=parse_duration(args.health_timeout, "--health-timeout"), health_retries=args.health_retries,
        no_healthcheck=args.no_healthcheck,
        publish_mode=modes.pop() if modes else "ingress").to_wire()


def _parallelism(value: int) -> int:
    if value < 0:
        raise CliError(f"invalid --update-parallelism {value}: it must be 0 (all at once) or more")
    return value or ALL_AT_ONCE


def update_request(args: argparse.Namespace) -> pb.UpdateServiceRequest:
    if args.image:
        image_ref.parse(args.image)
    if args.replicas is not None and args.replicas < 0:
        raise CliError(f"invalid --replicas {args.replicas}: it must be 0 or more")
    return pb.UpdateServiceRequest(
        name=args.name, image=args.image, env_add=parse_env(args.env_add), env_rm=list(args.env_rm),
        command_set=args.args is not None, command=shlex.split(args.args) if args.args is not None else [],
        replicas=-1 if args.replicas is None else args.replicas,
        update_parallelism=-1 if args.update_parallelism is None else _parallelism(args.update_parallelism),
        update_delay=-1.0 if args.update_delay is None else parse_duration(args.update_delay, "--update-delay"),
        network_add=args.network_add, network_rm=args.network_rm,
        publish_add=[parse_publish(p)[0].to_wire() for p in args.publish_add],
        publish_rm=[parse_published(p).to_wire() for p in args.publish_rm],
        constraint_add=args.constraint_add, constraint_rm=args.constraint_rm)


def parse_published(text: str) -> PortMapping:
    """--publish-rm PUBLISHED[/PROTO] (or PUBLISHED:TARGET[/PROTO]): the port to stop
    publishing, by its published port and protocol."""
    ports, _, protocol = text.partition("/")
    published = ports.partition(":")[0]
    try:
        return PortMapping(validate.protocol(protocol or "tcp"), validate.port(int(published), "published port"), 0)
    except ValueError:
        raise CliError(f"invalid --publish-rm {text!r}: use PUBLISHED[/PROTO], e.g. 8080") from None


def task_json(task: pb.ServiceTask) -> dict:
    return {"name": task.name, "service": task.service, "slot": task.slot, "host": task.host,
            "state": task.state, "exit_code": task.exit_code, "error": task.error, "restarts": task.restarts,
            "started_at": task.started_at, "addresses": dict(task.addresses), "version": task.version,
            "health": task.health}


def service_json(detail: pb.ServiceDetail) -> dict:
    spec = ServiceSpec.from_wire(detail.spec)
    running = sum(1 for t in detail.tasks if t.state == "running")
    return {"id": spec.id, "name": spec.name, "mode": spec.mode, "replicas": spec.replicas,
            "running": running, "image": familiar(spec.image_reference), "image_reference": spec.image_reference,
            "image_digest": spec.image_digest, "command": spec.command, "env": spec.env,
            "networks": spec.networks, "constraints": spec.constraints,
            "endpoint_mode": spec.endpoint_mode, "virtual_ips": spec.virtual_ips,
            "ports": [f"{p.host_port}:{p.container_port}/{p.protocol}" for p in spec.ports],
            "publish_mode": spec.publish_mode, "version": spec.version,
            "healthcheck": {"cmd": spec.health_cmd, "interval": spec.health_interval,
                            "timeout": spec.health_timeout, "retries": spec.health_retries,
                            # no cmd and not disabled: the tasks run the image's HEALTHCHECK, if any
                            "disabled": spec.no_healthcheck, "image_cmd": spec.image_health_cmd},
            "update": {"state": spec.update_state, "message": spec.update_message,
                       "parallelism": spec.update_parallelism, "delay": spec.update_delay},
            "restart_policy": {"condition": spec.restart_condition, "max_attempts": spec.restart_max_attempts,
                               "delay": spec.restart_delay},
            "memory_bytes": spec.memory_bytes, "created_at": spec.created_at, "updated_at": spec.updated_at,
            "tasks": [task_json(t) for t in detail.tasks]}


def _replicas_text(item: dict) -> str:
    if item["mode"] == "global":
        return f"{item['running']}/{len(item['tasks'])}"
    return f"{item['running']}/{item['replicas']}"


async def create(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    detail = await api.Create(create_request(args), timeout=RPC_TIMEOUT)
    print(detail.spec.id, flush=True)
    if not args.detach:
        await wait_converged(api, args.name)
    return 0


async def wait_converged(api: pb_grpc.ServicesStub, name: str, seconds: float = CONVERGE_SECONDS,
                         version: int | None = None) -> None:
    """As `docker service create` and `update` without -d: until every task it
    should have runs (and passes its health check, if any), of template
    `version` when given (an update's), printing the progress as it moves. A
    task that failed (its start, or its command with a non-zero exit), or a
    rollout that paused, ends the wait with its error: the service stays, and its
    leader keeps replacing the task, as Docker's does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    shown = None
    while True:
        detail = await api.Inspect(pb.NameRequest(name=name), timeout=RPC_TIMEOUT)
        current = [t for t in detail.tasks if version is None or t.version == version]
        failed = next((t for t in current if t.error or (t.state == "exited" and t.exit_code != 0)), None)
        if failed is not None:
            why = failed.error or f"exit code {failed.exit_code}"
            raise CliError(f"service {name} did not converge: task {failed.name} on {failed.host} failed: {why} "
                           f"(the service stays; `vxmesh service ps {name}`, `vxmesh service rm {name}`)")
        if detail.spec.update_state == "paused":
            raise CliError(f"service {name}: the update paused: {detail.spec.update_message} "
                           f"(`vxmesh service ps {name}`)")
        ready = sum(1 for t in current if t.state == "running" and t.health in ("", "healthy"))
        if (ready, detail.desired_tasks) != shown:
            shown = (ready, detail.desired_tasks)
            print(f"overall progress: {ready} out of {detail.desired_tasks} tasks", flush=True)
        if ready == len(detail.tasks) == detail.desired_tasks and detail.spec.update_state != "updating":
            print("verify: Service converged", flush=True)
            return
        if loop.time() >= deadline:
            raise CliError(f"service {name} did not converge within {seconds:.0f}s: {ready} of "
                           f"{detail.desired_tasks} tasks running (the service stays; `vxmesh service ps {name}`)")
        await asyncio.sleep(CONVERGE_POLL)


async def ls(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    items = [service_json(d) for d in (await api.List(pb.Empty(), timeout=RPC_TIMEOUT)).services]
    if args.format == "json":
        print(json.dumps(items, indent=2))
    else:
        print(table([[i["id"][:12], i["name"], i["mode"], _replicas_text(i), i["image"]] for i in items],
                    ["ID", "NAME", "MODE", "REPLICAS", "IMAGE"]))
    return 0


async def ps(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    detail = await api.Inspect(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
    tasks = [task_json(t) for t in detail.tasks]
    if args.format == "json":
        print(json.dumps(tasks, indent=2))
    else:
        print(table([[t["name"], t["host"], t["state"] + (f" ({t['health']})" if t["health"] else ""),
                      str(t["restarts"]),
                      t["error"] or (f"exit {t['exit_code']}" if t["state"] == "exited" else "")] for t in tasks],
                    ["NAME", "HOST", "STATE", "RESTARTS", "ERROR"]))
    return 0


async def inspect(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    items = [service_json(await api.Inspect(pb.NameRequest(name=n), timeout=RPC_TIMEOUT)) for n in args.names]
    print(json.dumps(items, indent=2))
    return 0


async def scale(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    requests = []
    for pair in args.pairs:
        name, sep, count = pair.partition("=")
        if not sep or not count.isdigit():
            raise CliError(f"invalid scale {pair!r}: use NAME=REPLICAS, e.g. web=3")
        requests.append(pb.ScaleRequest(name=name, replicas=int(count)))
    for request in requests:
        await api.Scale(request, timeout=RPC_TIMEOUT)
        print(f"{request.name} scaled to {request.replicas}")
    return 0


async def rm(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    for name in args.names:
        await api.Remove(pb.NameRequest(name=name), timeout=RPC_TIMEOUT)
        print(name)
    return 0


async def update(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    detail = await api.Update(update_request(args), timeout=RPC_TIMEOUT)
    print(args.name, flush=True)
    if not args.detach:
        await wait_converged(api, args.name, version=detail.spec.version)
    return 0


async def logs(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    async for chunk in api.Logs(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT):
        sys.stdout.buffer.write(chunk.data)
    sys.stdout.buffer.flush()
    return 0


ACTIONS = {"logs": logs, "update": update, "create": create, "ls": ls, "ps": ps, "inspect": inspect, "scale": scale, "rm": rm}


async def service(api: pb_grpc.ServicesStub, args: argparse.Namespace) -> int:
    return await ACTIONS[args.action](api, args)


COMMANDS = {"service": service}
