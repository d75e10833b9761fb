"""`vxmesh stack deploy|ls|ps|rm`: services and networks from a compose file (cli/compose.py).

A stack is the services named STACK_* that carry the stack's name, and the
overlay networks STACK_* its file declares. `deploy` creates what is
missing and changes only what differs: a new image, command, environment,
networks, published ports, placement, replica count or update settings is a
`service update` (rolling); a change the update cannot make (publish or
endpoint mode, mode, restart policy, health check) replaces the service. `--prune` also removes the stack's services the file
no longer has.
"""
from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from cli import compose
from cli.commands.common import RPC_TIMEOUT
from cli.commands.services import service_json, task_json
from cli.options import CliError
from cli.output import table
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ServiceSpec

# What `service update` cannot change: a difference here replaces the service.
REPLACED_BY = ("publish_mode", "mode", "endpoint_mode", "restart_condition", "restart_max_attempts", "restart_delay", "health_cmd", "health_interval",
               "health_timeout", "health_retries", "no_healthcheck")
NETWORK_GONE_SECONDS = 30.0


async def deploy(channel, args: argparse.Namespace) -> int:
    try:
        text = Path(args.compose_file).read_text()
    except OSError as err:
        raise CliError(f"cannot read {args.compose_file}: {err.strerror}") from None
    stack = compose.parse(text, args.name)
    controller, services = pb_grpc.ControllerStub(channel), pb_grpc.ServicesStub(channel)
    existing_networks = {n.name for n in (await controller.ListNetworks(pb.Empty(), timeout=RPC_TIMEOUT)).networks}
    for network in stack.networks:
        if network.name not in existing_networks:
            print(f"Creating network {network.name}")
            await controller.CreateNetwork(pb.CreateNetworkRequest(name=network.name, driver="overlay",
                                                                   subnet=network.subnet), timeout=RPC_TIMEOUT)
    current = {s.name: s for s in await _stack_services(services, args.name)}
    for spec in stack.services:
        old = current.pop(spec.name, None)
        if old is None:
            print(f"Creating service {spec.name}")
            await services.Create(spec.to_wire(), timeout=RPC_TIMEOUT)
        elif any(getattr(old, f) != getattr(spec, f) for f in REPLACED_BY):
            print(f"Replacing service {spec.name}")
            await services.Remove(pb.NameRequest(name=spec.name), timeout=RPC_TIMEOUT)
            await services.Create(spec.to_wire(), timeout=RPC_TIMEOUT)
        else:
            request = _update(old, spec)
            if request is not None:
                print(f"Updating service {spec.name}")
                await services.Update(request, timeout=RPC_TIMEOUT)
    if args.prune:
        for name in sorted(current):
            print(f"Removing service {name}")
            await services.Remove(pb.NameRequest(name=name), timeout=RPC_TIMEOUT)
    return 0


def _update(old: ServiceSpec, new: ServiceSpec) -> pb.UpdateServiceRequest | None:
    """The update that turns `old` into `new`, or None when nothing differs."""
    request = pb.UpdateServiceRequest(name=new.name, replicas=-1, update_parallelism=-1, update_delay=-1.0)
    changed = False
    if new.image != old.image:
        request.image, changed = new.image, True
    if new.command != old.command:
        request.command_set, changed = True, True
        request.command.extend(new.command)
    if new.env != old.env:
        request.env_add.update(new.env)
        request.env_rm.extend(k for k in old.env if k not in new.env)
        changed = True
    if new.networks != old.networks:
        # Docker's order: removals first; a network kept keeps its place only if the order stays.
        request.network_rm.extend(old.networks)
        request.network_add.extend(new.networks)
        changed = True
    if new.ports != old.ports:
        request.publish_rm.extend(p.to_wire() for p in old.ports)
        request.publish_add.extend(p.to_wire() for p in new.ports)
        changed = True
    if new.constraints != old.constraints:
        request.constraint_rm.extend(old.constraints)
        request.constraint_add.extend(new.constraints)
        changed = True
    if new.replicas != old.replicas:
        request.replicas, changed = new.replicas, True
    if new.update_parallelism != old.update_parallelism:
        request.update_parallelism, changed = new.update_parallelism, True
    if new.update_delay != old.update_delay:
        request.update_delay, changed = new.update_delay, True
    return request if changed else None


async def _stack_services(services: pb_grpc.ServicesStub, stack: str) -> list[ServiceSpec]:
    listed = (await services.List(pb.Empty(), timeout=RPC_TIMEOUT)).services
    return [ServiceSpec.from_wire(d.spec) for d in listed if d.spec.stack == stack]


async def ls(channel, args: argparse.Namespace) -> int:
    listed = (await pb_grpc.ServicesStub(channel).List(pb.Empty(), timeout=RPC_TIMEOUT)).services
    counts: dict[str, int] = {}
    for detail in listed:
        if detail.spec.stack:
            counts[detail.spec.stack] = counts.get(detail.spec.stack, 0) + 1
    rows = [{"name": name, "services": count} for name, count in sorted(counts.items())]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(table([[r["name"], str(r["services"])] for r in rows], ["NAME", "SERVICES"]))
    return 0


async def ps(channel, args: argparse.Namespace) -> int:
    services = pb_grpc.ServicesStub(channel)
    listed = (await services.List(pb.Empty(), timeout=RPC_TIMEOUT)).services
    details = [service_json(d) for d in listed if d.spec.stack == args.name]
    if not details:
        raise CliError(f"nothing found in stack: {args.name}")
    tasks = [t for d in details for t in d["tasks"]]
    if args.format == "json":
        print(json.dumps(tasks, indent=2))
    else:
        print(table([[t["name"], t["host"], t["state"], t["error"]] for t in tasks],
                    ["NAME", "HOST", "STATE", "ERROR"]))
    return 0


async def rm(channel, args: argparse.Namespace) -> int:
    """The stack's services, then the stack's networks they used."""
    controller, services = pb_grpc.ControllerStub(channel), pb_grpc.ServicesStub(channel)
    specs = await _stack_services(services, args.name)
    if not specs:
        raise CliError(f"nothing found in stack: {args.name}")
    for spec in specs:
        print(f"Removing service {spec.name}")
        await services.Remove(pb.NameRequest(name=spec.name), timeout=RPC_TIMEOUT)
    networks = sorted({n for spec in specs for n in spec.networks if n.startswith(f"{args.name}_")})
    for name in networks:
        print(f"Removing network {name}")
        await _remove_network(controller, name)
    return 0


async def _remove_network(controller: pb_grpc.ControllerStub, name: str) -> None:
    """Retried while the leader takes the last tasks and the routing mesh's legs off it."""
    import grpc
    loop = asyncio.get_running_loop()
    deadline = loop.time() + NETWORK_GONE_SECONDS
    while True:
        try:
            await controller.RemoveNetwork(pb.NameRequest(name=name), timeout=RPC_TIMEOUT)
            return
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.FAILED_PRECONDITION or loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


ACTIONS = {"deploy": deploy, "ls": ls, "ps": ps, "rm": rm}


async def stack(channel, args: argparse.Namespace) -> int:
    return await ACTIONS[args.action](channel, args)


COMMANDS = {"stack": stack}
