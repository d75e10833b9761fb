"""The `vxmesh` command line: every subcommand and option, as argparse sees them.

Only the user commands are parsed here. `vxmesh controller` and `vxmesh
agent` are listed so `vxmesh --help` shows them, but their arguments belong
to the daemons, which parse them with their own config schemas (cli/main.py
hands them over).
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from cli import certs, service_parser
from cli.early import DAEMONS, VERSION_FLAGS, version_line

# Docker's exit status when the command line itself is wrong (`docker run --bogus`).
EXIT_USAGE = 125
DEFAULT_CONTROLLER = "unix:///run/vxmesh-lab/vxlab/controller.sock"
# Where provisioning installs the TLS files: proto/config_file.py's TLS_DIR, not
# imported from there (with the daemons' whole config schema) for three defaults;
# tests/unit/test_cli_startup.py checks the two are the same.
TLS_DIR = "/etc/vxmesh/tls"


class Parser(argparse.ArgumentParser):
    """argparse as Docker's command line behaves: a wrong or unknown option is
    one line and exit status 125 (never 0, never argparse's 2), and options are
    never abbreviated (`--net` is an alias of its own, not a prefix)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\nSee '{self.prog} --help'.\n")


def bounded_int(flag: str, low: int, high: int, minus_one: int | None = None):
    """An argparse type: an integer in [low, high]; -1 means `minus_one` when given
    (Docker's "unlimited")."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {flag} {text!r}: not an integer") from None
        if value == -1 and minus_one is not None:
            return minus_one
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"invalid {flag} {value}: it must be between {low} and {high}")
        return value
    return parse


FORMAT_HELP = ('"table", "json", or a Go-template-style one: \'{{.Names}}\\t{{.Status}}\', '
               '\'{{json .}}\', \'table {{.ID}}\\t{{.Names}}\'')
# The largest value a uint32 field of the wire format holds.
UINT32_MAX = 2**32 - 1


def _request_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--request-id", default="", metavar="ID",
                        help="this change's id (8-64 letters, digits, '-', '_'; default: a new one): a "
                             "repeat with the same id within an hour gets the first one's result, "
                             "never a second change")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the `argv` about to be parsed, every command
    is still listed but only the one `argv` names gets its options and actions.

    Building all of them (some 250 arguments over 60 sub-parsers) cost a
    `vxmesh ps` 25-35 ms of CPU, against the one command it parses. A parser
    built for one command parses exactly as the whole one does for that
    command; `vxmesh --help` and a command line naming none build them all."""
    parser = Parser(prog="vxmesh", description="A multi-host VXLAN overlay for containers.")
    parser.add_argument("--controller", default=os.environ.get("VXMESH_CONTROLLER", DEFAULT_CONTROLLER),
                        help="controller address: host:port or unix:///path, or several, comma-separated: "
                             "a call that loses its controller moves on to the next (env VXMESH_CONTROLLER)")
    for flag, env, default in (("--ca", "VXMESH_CA", "ca.pem"), ("--cert", "VXMESH_CERT", "admin.pem"),
                               ("--key", "VXMESH_KEY", "admin-key.pem")):
        parser.add_argument(flag, type=Path, default=Path(os.environ.get(env, f"{TLS_DIR}/{default}")),
                            help=f"TLS for a TCP controller address: the {flag[2:]} file of an admin "
                                 f"(env {env}, default {TLS_DIR}/{default})")
    parser.add_argument("--insecure", action="store_true",
                        default=os.environ.get("VXMESH_INSECURE", "") == "1",
                        help="plain text to a TCP controller run with insecure = true (env VXMESH_INSECURE=1)")
    parser.add_argument(*VERSION_FLAGS, action="version", version=version_line(),
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = command_word(parser, argv) if argv is not None else None
    if wanted is not None:
        sub = OnlyCommand(sub, wanted)

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
    create.add_argument("--subnet", default="",
                        help="CIDR (default: a free one from the controller's default address pools)")
    create.add_argument("--gateway", default="")
    create.add_argument("--ip-range", default="", help="where dynamic addresses come from (inside --subnet)")
    create.add_argument("--internal", action="store_true", help="no way out: no egress, no default route")
    create.add_argument("--attachable", action="store_true", help="accepted (every network takes containers)")
    create.add_argument("--label", action="append", default=[], metavar="KEY[=VALUE]")
    create.add_argument("--vni", type=int, default=0)
    create.add_argument("-o", "--opt", action="append", default=[], metavar="KEY[=VALUE]",
                        help="driver option, as docker's; known: encrypted (needs IPsec ESP in the kernel)")
    create.add_argument("name")
    _request_id(create)
    net_ls = network.add_parser("ls", aliases=["list"], help="list networks")
    net_ls.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="name, id, driver, label (KEY or KEY=VALUE), scope; repeatable")
    net_ls.add_argument("-q", "--quiet", action="store_true", help="only the network ids")
    net_ls.add_argument("--format", default="table", help=FORMAT_HELP)
    prune = network.add_parser("prune", help="remove every user network no running container uses")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask")
    _request_id(prune)
    inspect_net = network.add_parser("inspect", help="show networks and their endpoints as a JSON array")
    inspect_net.add_argument("names", nargs="+", metavar="NETWORK")
    inspect_net.add_argument("-f", "--format", default="", help="a template applied to each network")
    rm_net = network.add_parser("rm", help="remove a network")
    rm_net.add_argument("name")
    _request_id(rm_net)
    for action in ("connect", "disconnect"):
        cmd = network.add_parser(action, help=f"{action} a container {'to' if action == 'connect' else 'from'} a network")
        cmd.add_argument("network")
        cmd.add_argument("container")
        if action == "connect":
            cmd.add_argument("--alias", action="append", default=[], help="another name on this network")
            cmd.add_argument("--ip", default="", help="the container's address on this network")
        _request_id(cmd)

    host = sub.add_parser("host", help="list hosts").add_subparsers(dest="action", required=True)
    host_ls = host.add_parser("ls", help="list hosts")
    host_ls.add_argument("--format", choices=["table", "json"], default="table")

    _container_parsers(sub)
    # `vxmesh container ls|inspect|rm|...`: Docker's management-command form of the same commands.
    container = sub.add_parser("container", help="manage containers (the commands above, as `container ACTION`)")
    _container_parsers(container.add_subparsers(dest="command", metavar="ACTION", required=True), management=True)
    _image_parsers(sub)
    service_parser.add_parsers(sub)
    service_parser.add_stack_parsers(sub)
    health = sub.add_parser("health", help="the controller's health; exits non-zero when it is unhealthy")
    health.add_argument("--format", choices=["table", "json"], default="table")
    tables = sub.add_parser("tables", help="the MAC/IP -> VTEP entries a host has programmed in its kernel")
    tables.add_argument("host")
    tables.add_argument("--network", default="")
    return parser


def command_word(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """The word of `argv` argparse will take for the command: the first that is
    neither one of `parser`'s (global) options nor an option's value."""
    words = iter(argv)
    for word in words:
        if not word.startswith("-") or word == "--":   # argparse's COMMAND, even "--" (refused)
            return word
        action = parser._option_string_actions.get(word.split("=", 1)[0])
        if action is not None and action.nargs != 0 and "=" not in word:
            next(words, None)   # the option's value
    return None


class OnlyCommand:
    """The `COMMAND` sub-parsers of build_parser(argv): each command is listed
    (for the help and the "invalid choice" error), only `wanted` is built."""

    def __init__(self, action: argparse._SubParsersAction, wanted: str | None):
        self.action = action
        self.wanted = wanted

    def add_parser(self, name: str, **kwargs):
        if self.wanted in (name, *kwargs.get("aliases", ())):
            return self.action.add_parser(name, **kwargs)
        # Listed under its name, aliases and help; parsed never (argv names another command).
        listed = {key: kwargs[key] for key in ("aliases", "help") if key in kwargs}
        self.action.add_parser(name, add_help=False, **listed)
        return _Unbuilt()


class _Unbuilt:
    """What a command argv does not name is built into: nothing."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self


def _container_parsers(sub: argparse._SubParsersAction, management: bool = False) -> None:
    """run, ps, inspect, logs, port, exec, stop, start, kill, rm; under `container`
    (management), ps is `ls` (also `list`, `ps`), as Docker's."""
    # As `docker run`, -h is --hostname; help is --help only.
    run = sub.add_parser("run", help="run a container: vxmesh run [OPTIONS] IMAGE [COMMAND] [ARG...]",
                         description="Run a container from IMAGE, as `docker run`: the image's Entrypoint, "
                                     "Cmd, Env, WorkingDir, User and ExposedPorts apply unless overridden. "
                                     "Options go before IMAGE; everything after it is the command.",
                         add_help=False)
    run.add_argument("--help", action="help", help="show this help message and exit")
    run.add_argument("-d", "--detach", action="store_true",
                     help="run in the background and print the id (without: stream its output, exit with its code)")
    run.add_argument("--rm", action="store_true", help="remove the container when it exits")
    run.add_argument("-i", "--interactive", action="store_true",
                     help="keep the container's standard input open (without -d: pass yours to it)")
    run.add_argument("-t", "--tty", action="store_true", help="give the container a pseudo-terminal")
    run.add_argument("--name", default="", help="the container's name (default: a generated one)")
    run.add_argument("--host", default="", help="host to run on (default: least loaded live host)")
    run.add_argument("--network", "--net", action="append", default=[],
                     help="network to attach (repeatable), or host, none, container:NAME (default: bridge)")
    run.add_argument("--network-alias", "--net-alias", action="append", default=[], metavar="ALIAS",
                     help="another name the container answers to on its networks (repeatable)")
    run.add_argument("--ip", default="", help="the container's address on its (first) network")
    run.add_argument("-h", "--hostname", default="", help="the container's host name (default: its name)")
    run.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    run.add_argument("-p", "--publish", action="append", default=[], metavar="[HOST_PORT:]CONTAINER_PORT[/PROTO]",
                     help="publish a container port on the host (repeatable)")
    run.add_argument("-l", "--label", action="append", default=[], metavar="KEY[=VALUE]",
                     help="a label, for ps --filter label= (repeatable)")
    run.add_argument("-P", "--publish-all", action="store_true",
                     help="publish every exposed port (the image's and --expose's) on a free host port")
    run.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]",
                     help="expose a port, as the image's ExposedPorts (repeatable)")
    run.add_argument("-v", "--volume", action="append", default=[], metavar="HOST_DIR:CONTAINER_DIR[:ro]",
                     help="bind-mount a host directory (repeatable)")
    run.add_argument("-m", "--memory", default="", help="memory limit, e.g. 64m")
    run.add_argument("--cpus", type=float, default=0.0, help="CPU limit, e.g. 0.5")
    run.add_argument("--pids-limit", type=bounded_int("--pids-limit", 0, UINT32_MAX, minus_one=0), default=0,
                     help="maximum number of processes (-1 or 0: unlimited)")
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
    run.add_argument("--restart", default="no", metavar="POLICY",
                     help="no (default), on-failure[:MAX], always or unless-stopped: the host's agent "
                          "starts the container again when it exits, with back-off")
    run.add_argument("--no-healthcheck", action="store_true",
                     help="do not run the image's HEALTHCHECK")
    _request_id(run)
    run.add_argument("image", help="the image: NAME[:TAG][@DIGEST], e.g. busybox")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]",
                     help="replaces the image's Cmd")

    ps = (sub.add_parser("ls", aliases=["list", "ps"], help="list containers") if management
          else sub.add_parser("ps", help="list containers"))
    ps.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    ps.add_argument("-q", "--quiet", action="store_true", help="only the container ids")
    ps.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                    help="name, id, status, network, host, label (KEY or KEY=VALUE); repeatable")
    ps.add_argument("--format", default="table", help=FORMAT_HELP)

    inspect = sub.add_parser("inspect", help="show containers as a JSON array, newest state")
    inspect.add_argument("names", nargs="+", metavar="CONTAINER")
    inspect.add_argument("-f", "--format", default="", help="a template applied to each container")
    logs = sub.add_parser("logs", help="print a container's output")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until it stops")
    logs.add_argument("-n", "--tail", default="all", help="lines to show from the end of the log (default all)")
    attach = sub.add_parser("attach", help="your terminal on a running container: its output from now on, "
                                           "your input if it was run with -i, until it stops")
    attach.add_argument("--no-stdin", action="store_true", help="do not send your input")
    attach.add_argument("name")
    port = sub.add_parser("port", help="a container's published ports: vxmesh port NAME [PORT[/PROTO]]")
    port.add_argument("name")
    port.add_argument("port", nargs="?", default="", metavar="PORT[/PROTO]")
    exec_ = sub.add_parser("exec", help="run a command in a container: vxmesh exec NAME -- CMD [ARG...]")
    exec_.add_argument("-i", "--interactive", action="store_true", help="pass standard input to the command")
    exec_.add_argument("-t", "--tty", action="store_true", help="give the command a pseudo-terminal")
    exec_.add_argument("name")
    exec_.add_argument("cmd", nargs=argparse.REMAINDER)
    stop = sub.add_parser("stop", help="stop a container (SIGTERM, then SIGKILL)")
    stop.add_argument("-t", "--time", type=bounded_int("--time", 0, 86400), default=0,
                      help="seconds to wait before SIGKILL (default 10)")
    stop.add_argument("names", nargs="+", metavar="CONTAINER")
    _request_id(stop)
    start = sub.add_parser("start", help="start a stopped container again")
    start.add_argument("-a", "--attach", action="store_true", help="print its output until it stops, "
                                                                   "and exit with its exit code")
    start.add_argument("-i", "--interactive", action="store_true", help="attach your input too (a container "
                                                                        "run with -i)")
    start.add_argument("names", nargs="+", metavar="CONTAINER")
    _request_id(start)
    kill = sub.add_parser("kill", help="send a signal to a container (default SIGKILL)")
    kill.add_argument("-s", "--signal", default="KILL")
    kill.add_argument("names", nargs="+", metavar="CONTAINER")
    rm = sub.add_parser("rm", help="remove a container")
    rm.add_argument("-f", "--force", action="store_true", help="kill it first if it is running")
    rm.add_argument("names", nargs="+", metavar="CONTAINER")
    _request_id(rm)


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
