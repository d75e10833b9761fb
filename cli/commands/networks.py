"""`vxmesh network create|ls|inspect|rm|connect|disconnect`."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys

import grpc

from cli.commands.common import RPC_TIMEOUT
from cli.listing import network_fields, network_filter
from cli.options import parse_labels
from cli.commands.containers import inspect_each
from cli.templates import render_all
from cli.output import network_json, network_rows
from proto import validate
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.errors import InvalidArgument
from proto.records import Network


def parse_opts(items: list[str]) -> dict[str, str]:
    """`--opt KEY[=VALUE]` arguments as a dict; the controller's driver says which it knows."""
    options: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"--opt {item!r} is not KEY[=VALUE]")
        options[key] = value
    return options


async def create(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    # The request's field is unsigned: a negative VNI must be refused here,
    # in the controller's words, before protobuf refuses it with a traceback.
    if args.vni != 0:
        validate.vni(args.vni)
    network = await api.CreateNetwork(pb.CreateNetworkRequest(
        name=args.name, driver=args.driver, subnet=args.subnet, gateway=args.gateway, vni=args.vni,
        options=parse_opts(args.opt), ip_range=args.ip_range, internal=args.internal,
        attachable=args.attachable, labels=parse_labels(args.label), request_id=args.request_id),
        timeout=RPC_TIMEOUT)
    print(network.id)


async def ls(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    reply = await api.ListNetworks(pb.Empty(), timeout=RPC_TIMEOUT)
    matches = network_filter(args.filter)
    networks = [n for n in (Network.from_wire(w) for w in reply.networks) if matches(n)]
    if args.quiet:
        print("\n".join(n.id[:12] for n in networks))
    elif args.format == "json":
        print(json.dumps([n.to_dict() for n in networks], indent=2))
    elif args.format and args.format != "table":
        print(render_all(args.format, [network_fields(n) for n in networks]))
    else:
        print(network_rows(networks))


PRUNE_WARNING = ("WARNING! This will remove all custom networks not used by at least one container.\n"
                 "Are you sure you want to continue? [y/N] ")


async def prune(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    """Remove every user network no running container is attached to (the
    controller refuses the others, which are kept)."""
    if not args.force:
        print(PRUNE_WARNING, end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return
    reply = await api.ListNetworks(pb.Empty(), timeout=RPC_TIMEOUT)
    deleted = []
    for network in (Network.from_wire(w) for w in reply.networks):
        if network.builtin:
            continue
        try:
            await api.RemoveNetwork(pb.NameRequest(name=network.name, request_id=_each(args.request_id, network.name)),
                                    timeout=RPC_TIMEOUT)
            deleted.append(network.name)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.FAILED_PRECONDITION:  # in use: kept, as Docker
                raise
    if deleted:
        print("Deleted Networks:\n" + "\n".join(deleted))


def _each(request_id: str, name: str) -> str:
    """prune's request id for removing one network: the same on every try of the
    prune (a retry lists the networks again, so it is derived from the name)."""
    if not request_id:
        return ""
    return f"{request_id[:47]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


async def inspect(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    return await inspect_each(
        args, lambda name: api.InspectNetwork(pb.NameRequest(name=name), timeout=RPC_TIMEOUT), network_json)


async def rm(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    await api.RemoveNetwork(pb.NameRequest(name=args.name, request_id=args.request_id), timeout=RPC_TIMEOUT)
    print(args.name)


async def connect(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    await api.ConnectNetwork(pb.ConnectRequest(network=args.network, container=args.container,
                                               aliases=args.alias, ip=args.ip, request_id=args.request_id),
                             timeout=RPC_TIMEOUT)


async def disconnect(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    await api.DisconnectNetwork(pb.ConnectRequest(network=args.network, container=args.container,
                                                  request_id=args.request_id), timeout=RPC_TIMEOUT)


ACTIONS = {"create": create, "ls": ls, "list": ls, "inspect": inspect, "rm": rm, "connect": connect,
           "disconnect": disconnect, "prune": prune}


async def network(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    code = await ACTIONS[args.action](api, args)
    return code or 0


COMMANDS = {"network": network}
