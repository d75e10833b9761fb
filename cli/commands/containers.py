"""`vxmesh run|ps|inspect|exec|logs|stop|start|kill|rm`: containers."""
from __future__ import annotations

import argparse
import json
import sys

from cli.commands.common import RPC_TIMEOUT
from cli.options import parse_command, parse_env, parse_port, parse_signal, parse_size, parse_volume
from cli.output import container_json, container_rows
from proto import capabilities, image_ref, network_mode
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.network_mode import NetworkMode
from proto.run_options import parse_restart, parse_security_opts, parse_ulimit


def run_request(args: argparse.Namespace) -> pb.RunRequest:
    """The request `run` sends; every option is checked here first (a seccomp
    profile file is read here, as Docker's client reads it)."""
    ports = [parse_port(p) for p in args.publish]
    if ports and NetworkMode.parse(args.network).kind == network_mode.HOST:
        # Docker's behaviour: the container already uses the host's ports.
        print("WARNING: published ports are discarded when using host network mode", file=sys.stderr)
        ports = []
    image_ref.parse(args.image)
    security = parse_security_opts(args.security_opt)
    restart_policy, restart_max = parse_restart(args.restart)
    entrypoint = args.entrypoint
    return pb.RunRequest(
        name=args.name, host=args.host, networks=args.network, hostname=args.hostname,
        env=parse_env(args.env), command=list(args.cmd), ports=[p.to_wire() for p in ports],
        mounts=[parse_volume(v).to_wire() for v in args.volume],
        memory_bytes=parse_size(args.memory) if args.memory else 0, cpus=args.cpus,
        pids_limit=args.pids_limit, image=args.image,
        # Docker takes --entrypoint as one word; "" clears the image's.
        entrypoint=[entrypoint] if entrypoint else [], entrypoint_set=entrypoint is not None,
        working_dir=args.workdir, user=args.user, read_only=args.read_only,
        cap_add=[capabilities.canonical(c) for c in args.cap_add],
        cap_drop=[capabilities.canonical(c) for c in args.cap_drop], privileged=args.privileged,
        seccomp=security.seccomp, seccomp_profile=security.seccomp_profile,
        allow_new_privileges=not security.no_new_privileges,
        ulimits=[parse_ulimit(u).to_wire() for u in args.ulimit],
        restart_policy=restart_policy, restart_max_retries=restart_max)


async def run(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    detail = await api.Run(run_request(args), timeout=RPC_TIMEOUT)
    print(detail.spec.id)
    return 0


async def ps(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    reply = await api.ListContainers(pb.ListContainersRequest(all=args.all), timeout=RPC_TIMEOUT)
    items = [container_json(d) for d in reply.containers]
    print(json.dumps(items, indent=2) if args.format == "json" else container_rows(items))
    return 0


async def inspect(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    detail = await api.Inspect(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
    print(json.dumps(container_json(detail), indent=2))
    return 0


async def exec_(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    code = 0
    request = pb.ExecRequest(container=args.name, command=parse_command(args))
    async for out in api.Exec(request, timeout=RPC_TIMEOUT):
        if out.stdout:
            sys.stdout.buffer.write(out.stdout)
            sys.stdout.buffer.flush()
        if out.stderr:
            sys.stderr.buffer.write(out.stderr)
            sys.stderr.buffer.flush()
        if out.exited:
            code = out.exit_code
    return code


async def logs(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    async for chunk in api.Logs(pb.LogsRequest(container=args.name), timeout=RPC_TIMEOUT):
        sys.stdout.buffer.write(chunk.data)
    sys.stdout.buffer.flush()
    return 0


async def stop(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    await api.Stop(pb.StopRequest(name=args.name, timeout=args.time), timeout=RPC_TIMEOUT + args.time)
    print(args.name)
    return 0


async def start(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    await api.Start(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
    print(args.name)
    return 0


async def kill(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    await api.Kill(pb.KillRequest(container=args.name, signal=parse_signal(args.signal)), timeout=RPC_TIMEOUT)
    print(args.name)
    return 0


async def rm(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    await api.Remove(pb.NameRequest(name=args.name, force=args.force), timeout=RPC_TIMEOUT)
    print(args.name)
    return 0


COMMANDS = {"run": run, "ps": ps, "inspect": inspect, "exec": exec_, "logs": logs, "stop": stop,
            "start": start, "kill": kill, "rm": rm}
