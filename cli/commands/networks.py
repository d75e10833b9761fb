"""`vxmesh network create|ls|inspect|rm|connect|disconnect`."""
from __future__ import annotations

import argparse
import json

from cli.commands.common import RPC_TIMEOUT
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
        options=parse_opts(args.opt)), timeout=RPC_TIMEOUT)
    print(network.id)


async def ls(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    reply = await api.ListNetworks(pb.Empty(), timeout=RPC_TIMEOUT)
    print(network_rows([Network.from_wire(n) for n in reply.networks]))


async def inspect(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    detail = await api.InspectNetwork(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
    print(json.dumps(network_json(detail), indent=2))


async def rm(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    await api.RemoveNetwork(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
    print(args.name)


async def connect(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    await api.ConnectNetwork(pb.ConnectRequest(network=args.network, container=args.container,
                                               aliases=args.alias),
                             timeout=RPC_TIMEOUT)


async def disconnect(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> None:
    await api.DisconnectNetwork(pb.ConnectRequest(network=args.network, container=args.container),
                                timeout=RPC_TIMEOUT)


ACTIONS = {"create": create, "ls": ls, "inspect": inspect, "rm": rm, "connect": connect,
           "disconnect": disconnect}


async def network(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    await ACTIONS[args.action](api, args)
    return 0


COMMANDS = {"network": network}
