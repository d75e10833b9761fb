"""The `vxmesh` command line: every subcommand and option, as argparse sees them.

Only the user commands are parsed here. `vxmesh controller` and `vxmesh
agent` are listed so `vxmesh --help` shows them, but their arguments belong
to the daemons, which parse them with their own config schemas (cli/main.py
hands them over).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from cli import certs
from proto.config_file import TLS_DIR

DEFAULT_CONTROLLER = "unix:///run/vxmesh-lab/vxlab/controller.sock"
# The daemons `vxmesh NAME ...` runs, each as `python -m NAME ...` (cli/main.py).
DAEMONS = {"controller": "run a controller (options: vxmesh controller --help)",
           "agent": "run a host agent (options: vxmesh agent --help)"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vxmesh", description="A multi-host VXLAN overlay for containers.")
    parser.add_argument("--controller", default=os.environ.get("VXMESH_CONTROLLER", DEFAULT_CONTROLLER),
                        help="controller address: host:port or unix:///path (env VXMESH_CONTROLLER)")
    for flag, env, default in (("--ca", "VXMESH_CA", "ca.pem"), ("--cert", "VXMESH_CERT", "admin.pem"),
                               ("--key", "VXMESH_KEY", "admin-key.pem")):
        parser.add_argument(flag, type=Path, default=Path(os.environ.get(env, f"{TLS_DIR}/{default}")),
                            help=f"TLS for a TCP controller address: the {flag[2:]} file of an admin "
                                 f"(env {env}, default {TLS_DIR}/{default})")
    parser.add_argument("--insecure", action="store_true",
                        default=os.environ.get("VXMESH_INSECURE", "") == "1",
                        help="plain text to a TCP controller run with insecure = true (env VXMESH_INSECURE=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for daemon, text in DAEMONS.items():
        sub.add_parser(daemon, help=text, add_help=False)
    certs.add_parser(sub)
    cni = sub.add_parser("cni", help="podman and other CNI runtimes on vxmesh networks").add_subparsers(
        dest="action", required=True)
    install = cni.add_parser("install", help="write the CNI network config for a vxmesh network")
    install.add_argument("--network", required=True, help="the vxmesh network")
    install.add_argument("--name", default="", help="the CNI network's name (default: the vxmesh network's)")
    install.add_argument("--dir", type=Path, default=Path("/etc/cni/net.d"),
                         help="where the runtime reads network configs (podman: network_config_dir)")
    install.add_argument("--socket", default="/run/docker/plugins/vxmesh.sock",
                         help="the agent's plug-in socket (agent option plugin-socket)")

    network = sub.add_parser("network", help="manage networks").add_subparsers(dest="action", required=True)
    create = network.add_parser("create", help="create a network")
    create.add_argument("-d", "--driver", default="overlay",
                        help="network driver: overlay (across hosts, the default) or bridge (one per host)")
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

    run = sub.add_parser("run", help="run a container: vxmesh run [OPTIONS] IMAGE [COMMAND] [ARG...]",
                         description="Run a container from IMAGE, as `docker run`: the image's Entrypoint, "
                                     "Cmd, Env, WorkingDir, User and ExposedPorts apply unless overridden. "
                                     "Options go before IMAGE; everything after it is the command.")
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
    run.add_argument("-m", "--memory", default="", help="memory limit, e.g. 64m")
    run.add_argument("--cpus", type=float, default=0.0, help="CPU limit, e.g. 0.5")
    run.add_argument("--pids-limit", type=int, default=0, help="maximum number of processes")
    run.add_argument("--entrypoint", default=None,
                     help="replace the image's Entrypoint (and drop its Cmd); \"\" clears it")
    run.add_argument("-w", "--workdir", default="", help="working directory inside the container")
    run.add_argument("-u", "--user", default="", metavar="USER[:GROUP]",
                     help="user (name or uid) and group to run as, from the image's /etc/passwd")
    run.add_argument("--read-only", action="store_true", help="mount the container's root filesystem read-only")
    run.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                     help="add a Linux capability to Docker's default set (repeatable; ALL)")
    run.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                     help="drop a Linux capability (repeatable; ALL)")
    run.add_argument("--privileged", action="store_true",
                     help="every capability, no seccomp filter, no masked or read-only paths")
    run.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                     help="seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges[=true|false]")
    run.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
                     help="a resource limit, e.g. nofile=1024:2048 (repeatable)")
    run.add_argument("image", help="the image: NAME[:TAG][@DIGEST], e.g. busybox")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]",
                     help="replaces the image's Cmd")

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
    _image_parsers(sub)
    health = sub.add_parser("health", help="the controller's health; exits non-zero when it is unhealthy")
    health.add_argument("--format", choices=["table", "json"], default="table")
    tables = sub.add_parser("tables", help="the MAC/IP -> VTEP entries a host has programmed in its kernel")
    tables.add_argument("host")
    tables.add_argument("--network", default="")
    return parser


def _image_parsers(sub: argparse._SubParsersAction) -> None:
    """`vxmesh image load|pull|push|ls|rm|inspect`, and `vxmesh images` for `image ls`."""
    image = sub.add_parser("image", help="manage the cluster's images (kept in its registry)")
    actions = image.add_subparsers(dest="action", required=True)
    load = actions.add_parser("load", help="load images from a `docker save` tarball or an OCI archive")
    load.add_argument("-i", "--input", type=Path, default=None, metavar="FILE",
                      help="the archive (default: standard input)")
    for action, text in (("pull", "copy an image from its registry into the cluster's"),
                         ("push", "copy an image from the cluster's registry to the registry its name names")):
        cmd = actions.add_parser(action, help=text)
        cmd.add_argument("reference", metavar="NAME[:TAG]")
    ls = actions.add_parser("ls", help="list images")
    images = sub.add_parser("images", help="list images (image ls)")
    for cmd in (ls, images):
        cmd.add_argument("--format", choices=["table", "json"], default="table")
    rm = actions.add_parser("rm", help="remove images (refused while a container uses one)")
    rm.add_argument("references", nargs="+", metavar="IMAGE")
    inspect = actions.add_parser("inspect", help="show images as JSON")
    inspect.add_argument("references", nargs="+", metavar="IMAGE")
