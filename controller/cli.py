"""`vxmesh`: the docker-shaped command line, and the entry to the daemons.

User commands talk to a controller over gRPC (address from --controller,
VXMESH_CONTROLLER, or the namespace lab's unix socket): on TCP with mutual
TLS and an admin certificate (--ca/--cert/--key, VXMESH_CA/_CERT/_KEY,
by default the ones provisioning installs in /etc/vxmesh/tls); on the
controller host's unix socket, which only root can open, without
(proto/transport.py says why). A user mistake is one line on stderr and a
non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import grpc

from controller import certs_cli, config
from controller.cli_options import CliError, format_port, parse_port, parse_signal, parse_size, parse_volume
from controller.ipam import VNI_MAX, VNI_MIN
from controller.network_options import parse_opts
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ContainerSpec, ContainerStatus, Endpoint, Host, Network
from proto.tls import ROLES, Tls, TlsError, TlsFiles
from proto.transport import Transport, is_unix

DEFAULT_CONTROLLER = "unix:///run/vxmesh-lab/vxlab/controller.sock"
RPC_TIMEOUT = 60.0
# Health answers within its own bound on etcd (controller/api.py); a bit more for the call.
HEALTH_TIMEOUT = 10.0


# ---- argument parsing --------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vxmesh", description="A multi-host VXLAN overlay for containers.")
    parser.add_argument("--controller", default=os.environ.get("VXMESH_CONTROLLER", DEFAULT_CONTROLLER),
                        help="controller address: host:port or unix:///path (env VXMESH_CONTROLLER)")
    for flag, env, default in (("--ca", "VXMESH_CA", "ca.pem"), ("--cert", "VXMESH_CERT", "admin.pem"),
                               ("--key", "VXMESH_KEY", "admin-key.pem")):
        parser.add_argument(flag, type=Path, default=Path(os.environ.get(env, f"{config.TLS_DIR}/{default}")),
                            help=f"TLS for a TCP controller address: the {flag[2:]} file of an admin "
                                 f"(env {env}, default {config.TLS_DIR}/{default})")
    parser.add_argument("--insecure", action="store_true",
                        default=os.environ.get("VXMESH_INSECURE", "") == "1",
                        help="plain text to a TCP controller run with insecure = true (env VXMESH_INSECURE=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ctl = sub.add_parser("controller", help="run a controller",
                         description="Run a controller. Options come from --config FILE "
                                     "(deploy/config/controller.toml documents them) and flags.")
    config.add_flags(ctl, config.CONTROLLER)

    agent = sub.add_parser("agent", help="run a host agent",
                           description="Run a host agent. Options come from --config FILE "
                                       "(deploy/config/agent.toml documents them) and flags.")
    config.add_flags(agent, config.AGENT)
    certs_cli.add_parser(sub)

    network = sub.add_parser("network", help="manage networks").add_subparsers(dest="action", required=True)
    create = network.add_parser("create", help="create a network")
    create.add_argument("-d", "--driver", default="overlay", choices=["overlay", "bridge"])
    create.add_argument("--subnet", required=True)
    create.add_argument("--gateway", default="")
    create.add_argument("--vni", type=int, default=0)
    create.add_argument("-o", "--opt", action="append", default=[], metavar="KEY[=VALUE]",
                        help="driver option, as docker's; known: encrypted (needs IPsec ESP in the kernel)")
    create.add_argument("name")
    network.add_parser("ls", help="list networks")
    inspect_net = network.add_parser("inspect", help="show a network and its endpoints as JSON")
    inspect_net.add_argument("name")
    rm_net = network.add_parser("rm", help="remove a network")
    rm_net.add_argument("name")
    for action in ("connect", "disconnect"):
        cmd = network.add_parser(action, help=f"{action} a container {'to' if action == 'connect' else 'from'} a network")
        cmd.add_argument("network")
        cmd.add_argument("container")

    host = sub.add_parser("host", help="list hosts").add_subparsers(dest="action", required=True)
    host_ls = host.add_parser("ls", help="list hosts")
    host_ls.add_argument("--format", choices=["table", "json"], default="table")

    run = sub.add_parser("run", help="run a container: vxmesh run [OPTIONS] -- CMD [ARG...]")
    run.add_argument("-d", "--detach", action="store_true", help="run in the background (always the case)")
    run.add_argument("--name", required=True)
    run.add_argument("--host", default="", help="host to run on (default: least loaded live host)")
    run.add_argument("--network", "--net", action="append", default=[],
                     help="network to attach (repeatable), or host, none, container:NAME (default: bridge)")
    run.add_argument("--hostname", default="")
    run.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    run.add_argument("-p", "--publish", action="append", default=[], metavar="[HOST_PORT:]CONTAINER_PORT[/PROTO]",
                     help="publish a container port on the host (repeatable)")
    run.add_argument("-v", "--volume", action="append", default=[], metavar="HOST_DIR:CONTAINER_DIR[:ro]",
                     help="bind-mount a host directory (repeatable)")
    run.add_argument("--rootfs", default="", help="directory on the host to use as the container's root filesystem")
    run.add_argument("-m", "--memory", default="", help="memory limit, e.g. 64m")
    run.add_argument("--cpus", type=float, default=0.0, help="CPU limit, e.g. 0.5")
    run.add_argument("--pids-limit", type=int, default=0, help="maximum number of processes")
    run.add_argument("cmd", nargs=argparse.REMAINDER)

    ps = sub.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    ps.add_argument("--format", choices=["table", "json"], default="table")

    for name, text in (("inspect", "show a container as JSON"), ("logs", "print a container's output")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("name")
    exec_ = sub.add_parser("exec", help="run a command in a container: vxmesh exec NAME -- CMD [ARG...]")
    exec_.add_argument("name")
    exec_.add_argument("cmd", nargs=argparse.REMAINDER)
    stop = sub.add_parser("stop", help="stop a container (SIGTERM, then SIGKILL)")
    stop.add_argument("-t", "--time", type=int, default=0, help="seconds to wait before SIGKILL (default 10)")
    stop.add_argument("name")
    start = sub.add_parser("start", help="start a stopped container again")
    start.add_argument("name")
    kill = sub.add_parser("kill", help="send a signal to a container (default SIGKILL)")
    kill.add_argument("-s", "--signal", default="KILL")
    kill.add_argument("name")
    rm = sub.add_parser("rm", help="remove a container")
    rm.add_argument("-f", "--force", action="store_true", help="kill it first if it is running")
    rm.add_argument("name")
    health = sub.add_parser("health", help="the controller's health; exits non-zero when it is unhealthy")
    health.add_argument("--format", choices=["table", "json"], default="table")
    tables = sub.add_parser("tables", help="the MAC/IP -> VTEP entries a host has programmed in its kernel")
    tables.add_argument("host")
    tables.add_argument("--network", default="")
    return parser


def _command(args: argparse.Namespace) -> list[str]:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise CliError(f"'vxmesh {args.command}' needs a command: vxmesh {args.command} ... -- CMD [ARG...]")
    return cmd


def _env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"invalid environment variable {pair!r}: expected KEY=VALUE")
        env[key] = value
    return env


# ---- output ---------------------------------------------------------------

def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def container_json(detail: pb.ContainerDetail) -> dict:
    spec = ContainerSpec.from_wire(detail.spec)
    status = ContainerStatus.from_wire(detail.status)
    return {
        "id": spec.id, "name": spec.name, "host": spec.host, "hostname": spec.hostname,
        "command": spec.command, "env": spec.env, "created_at": spec.created_at,
        "state": status.state, "pid": status.pid, "exit_code": status.exit_code,
        "started_at": status.started_at, "finished_at": status.finished_at, "error": status.error,
        "network_mode": spec.network_mode or "default",
        "networks": {a.network: {"ip": a.ip, "mac": a.mac} for a in spec.attachments},
        "ports": [format_port(p) for p in spec.ports],
        "rootfs": spec.rootfs,
        "mounts": [f"{m.source}:{m.target}{':ro' if m.readonly else ''}" for m in spec.mounts],
        "memory_bytes": spec.memory_bytes, "cpus": spec.cpus, "pids_limit": spec.pids_limit,
    }


def network_json(detail: pb.NetworkDetail) -> dict:
    network = Network.from_wire(detail.network)
    data = {k: v for k, v in network.to_dict().items()}
    data["endpoints"] = [{"container": e.container, "host": e.host, "ip": e.ip, "mac": e.mac}
                         for e in (Endpoint.from_wire(x) for x in detail.endpoints)]
    return data


def _duration(t: float) -> str:
    seconds = max(0, int(time.time() - t))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---- user commands ------------------------------------------------------------

async def user_command(args: argparse.Namespace) -> int:
    async with _channel(args.controller, _transport(args)) as channel:
        api = pb_grpc.ControllerStub(channel)
        if args.command == "network":
            return await _network(api, args)
        if args.command == "host":
            hosts = [Host.from_wire(h) for h in (await api.ListHosts(pb.Empty(), timeout=RPC_TIMEOUT)).hosts]
            if args.format == "json":
                print(json.dumps([{"name": h.name, "vtep": h.vtep, "state": h.state, "containers": h.containers,
                                   "mtu": h.mtu, "api": h.api} for h in hosts], indent=2))
            else:
                print(_table([[h.name, h.vtep, h.state, str(h.containers)] for h in hosts],
                             ["NAME", "VTEP", "STATE", "CONTAINERS"]))
            return 0
        if args.command == "run":
            detail = await api.Run(_run_request(args), timeout=RPC_TIMEOUT)
            print(detail.spec.id)
            return 0
        if args.command == "start":
            await api.Start(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
            print(args.name)
            return 0
        if args.command == "kill":
            await api.Kill(pb.KillRequest(container=args.name, signal=parse_signal(args.signal)),
                           timeout=RPC_TIMEOUT)
            print(args.name)
            return 0
        if args.command == "ps":
            reply = await api.ListContainers(pb.ListContainersRequest(all=args.all), timeout=RPC_TIMEOUT)
            items = [container_json(d) for d in reply.containers]
            if args.format == "json":
                print(json.dumps(items, indent=2))
            else:
                rows = [[c["id"][:12], c["name"], c["host"], " ".join(c["command"])[:30],
                         _status_text(c), ", ".join(c["ports"]), _networks_text(c)]
                        for c in items]
                print(_table(rows, ["CONTAINER ID", "NAME", "HOST", "COMMAND", "STATUS", "PORTS", "NETWORKS"]))
            return 0
        if args.command == "inspect":
            detail = await api.Inspect(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
            print(json.dumps(container_json(detail), indent=2))
            return 0
        if args.command == "exec":
            return await _exec(api, args)
        if args.command == "logs":
            async for chunk in api.Logs(pb.LogsRequest(container=args.name), timeout=RPC_TIMEOUT):
                sys.stdout.buffer.write(chunk.data)
            sys.stdout.buffer.flush()
            return 0
        if args.command == "stop":
            await api.Stop(pb.StopRequest(name=args.name, timeout=args.time), timeout=RPC_TIMEOUT + args.time)
            print(args.name)
            return 0
        if args.command == "rm":
            await api.Remove(pb.NameRequest(name=args.name, force=args.force), timeout=RPC_TIMEOUT)
            print(args.name)
            return 0
        if args.command == "health":
            return await _health(api, args)
        if args.command == "tables":
            reply = await api.HostTables(pb.HostTablesRequest(host=args.host, network=args.network),
                                         timeout=RPC_TIMEOUT)
            print(_table([[e.network, str(e.vni), e.mac, e.ip, e.vtep] for e in reply.entries],
                         ["NETWORK", "VNI", "MAC", "IP", "VTEP"]))
            return 0
    raise CliError(f"unknown command {args.command!r}")


def _run_request(args: argparse.Namespace) -> pb.RunRequest:
    ports = [parse_port(p) for p in args.publish]
    if ports and args.network == ["host"]:
        # Docker's behaviour: the container already uses the host's ports.
        print("WARNING: published ports are discarded when using host network mode", file=sys.stderr)
        ports = []
    return pb.RunRequest(
        name=args.name, host=args.host, networks=args.network, hostname=args.hostname,
        env=_env(args.env), command=_command(args), ports=[p.to_wire() for p in ports],
        mounts=[parse_volume(v).to_wire() for v in args.volume], rootfs=args.rootfs,
        memory_bytes=parse_size(args.memory) if args.memory else 0, cpus=args.cpus,
        pids_limit=args.pids_limit)


def _networks_text(c: dict) -> str:
    if c["network_mode"] != "default":
        return c["network_mode"]
    return ",".join(f"{n}:{v['ip']}" for n, v in c["networks"].items())


def _status_text(c: dict) -> str:
    if c["state"] == "running":
        return f"Up {_duration(c['started_at'])}"
    if c["state"] == "exited":
        ago = f" {_duration(c['finished_at'])} ago" if c["finished_at"] else ""
        return f"Exited ({c['exit_code']}){ago}"
    return c["state"].capitalize()


def _network_opts(items: list[str]) -> dict[str, str]:
    try:
        return parse_opts(items)
    except ValueError as err:
        raise CliError(str(err)) from None


async def _network(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    if args.action == "create":
        # The request's field is unsigned: a negative VNI must be refused here,
        # in the controller's words, before protobuf refuses it with a traceback.
        if not 0 <= args.vni <= VNI_MAX:
            raise CliError(f"invalid VNI {args.vni}: it must be between {VNI_MIN} and {VNI_MAX} (0: pick one)")
        network = await api.CreateNetwork(pb.CreateNetworkRequest(
            name=args.name, driver=args.driver, subnet=args.subnet, gateway=args.gateway, vni=args.vni,
            options=_network_opts(args.opt)), timeout=RPC_TIMEOUT)
        print(network.id)
    elif args.action == "ls":
        reply = await api.ListNetworks(pb.Empty(), timeout=RPC_TIMEOUT)
        print(_table([[n.id[:12], n.name, n.driver, "local" if n.driver != "overlay" else "swarm",
                       n.subnet or ("per host" if n.driver == "bridge" else "-"), n.gateway or "-",
                       str(n.vni) if n.vni else "-"] for n in reply.networks],
                     ["NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "GATEWAY", "VNI"]))
    elif args.action == "inspect":
        detail = await api.InspectNetwork(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
        print(json.dumps(network_json(detail), indent=2))
    elif args.action == "rm":
        await api.RemoveNetwork(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
        print(args.name)
    elif args.action == "connect":
        await api.ConnectNetwork(pb.ConnectRequest(network=args.network, container=args.container),
                                 timeout=RPC_TIMEOUT)
    elif args.action == "disconnect":
        await api.DisconnectNetwork(pb.ConnectRequest(network=args.network, container=args.container),
                                    timeout=RPC_TIMEOUT)
    return 0


async def _health(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    reply = await api.Health(pb.Empty(), timeout=HEALTH_TIMEOUT)
    if args.format == "json":
        print(json.dumps({"healthy": reply.healthy, "revision": reply.revision, "detail": reply.detail,
                          "agents_connected": reply.agents_connected,
                          "snapshots_served": reply.snapshots_served, "resumes_served": reply.resumes_served,
                          "resyncs_served": reply.resyncs_served}, indent=2))
    else:
        state = "healthy" if reply.healthy else f"unhealthy: {reply.detail}"
        print(f"{state}\netcd revision {reply.revision}, {reply.agents_connected} agents connected, "
              f"streams begun with {reply.snapshots_served} snapshots and {reply.resumes_served} resumes, "
              f"{reply.resyncs_served} resyncs")
    return 0 if reply.healthy else 1


async def _exec(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    code = 0
    async for out in api.Exec(pb.ExecRequest(container=args.name, command=_command(args)), timeout=RPC_TIMEOUT):
        if out.stdout:
            sys.stdout.buffer.write(out.stdout)
            sys.stdout.buffer.flush()
        if out.stderr:
            sys.stderr.buffer.write(out.stderr)
            sys.stderr.buffer.flush()
        if out.exited:
            code = out.exit_code
    return code


def _transport(args: argparse.Namespace) -> Transport:
    if is_unix(args.controller):
        return Transport(None)  # root on the controller's host: no certificate needed
    if args.insecure:
        return Transport.insecure("vxmesh CLI")
    try:
        # Any of the cluster's certificates: the controller says what it may do.
        return Transport(Tls.load(TlsFiles(args.ca, args.cert, args.key), ROLES))
    except TlsError as err:
        raise CliError(f"{err} (set --ca/--cert/--key or VXMESH_CA/VXMESH_CERT/VXMESH_KEY)") from None


class _channel:
    """A channel to the controller whose connection failure reads as one line."""

    def __init__(self, address: str, transport: Transport):
        self.address = address
        self.channel = transport.channel(address)

    async def __aenter__(self) -> grpc.aio.Channel:
        try:
            await asyncio.wait_for(self.channel.channel_ready(), 5.0)
        except asyncio.TimeoutError:
            await self.channel.close()
            raise CliError(f"cannot reach the controller at {self.address} "
                           "(is it running? set --controller or VXMESH_CONTROLLER)") from None
        return self.channel

    async def __aexit__(self, *exc) -> None:
        await self.channel.close()


# ---- the daemons -----------------------------------------------------------------

def _run_controller(args: argparse.Namespace) -> int:
    values = config.resolve(config.CONTROLLER, args.config, config.given_flags(args, config.CONTROLLER))
    # Imported here: the user commands need none of the server's modules.
    from controller.server import ControllerConfig, run
    tls = _tls_files(values)
    etcd_tls = TlsFiles(*(Path(values[f"etcd-{k}"] or values[k]) for k in ("ca", "cert", "key")))
    run(ControllerConfig(listen=values["listen"], etcd=values["etcd"], data_dir=Path(values["data-dir"]),
                         prefix=values["prefix"], host_ttl=values["host-ttl"],
                         tls=tls, insecure=values["insecure"], etcd_tls=etcd_tls))
    return 0


def _run_agent(args: argparse.Namespace) -> int:
    values = config.resolve(config.AGENT, args.config, config.given_flags(args, config.AGENT))
    from agent.main import AgentConfig, run
    run(AgentConfig(name=values["name"], controllers=values["controller"], vtep_ip=values["vtep-ip"],
                    api=config.agent_api(values), state_root=Path(values["state-root"]),
                    gwbridge_subnet=values["gwbridge-subnet"],
                    gwbridge_gateway=config.first_host(values["gwbridge-subnet"]),
                    bridge_subnet=values["bridge-subnet"],
                    bridge_gateway=config.first_host(values["bridge-subnet"]),
                    vtep_filter=values["vtep-filter"] == "on",
                    tls=_tls_files(values), insecure=values["insecure"]))
    return 0


def _tls_files(values: dict) -> TlsFiles:
    return TlsFiles(Path(values["ca"]), Path(values["cert"]), Path(values["key"]))


# ---- entry point -----------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "controller":
            return _run_controller(args)
        if args.command == "agent":
            return _run_agent(args)
        if args.command == "certs":
            return certs_cli.run(args)
        return asyncio.run(user_command(args))
    except (CliError, config.ConfigError, TlsError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except grpc.aio.AioRpcError as err:
        print(f"Error: {err.details() or err.code().name}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
