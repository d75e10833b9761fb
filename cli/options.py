"""Docker's option syntaxes, parsed for the CLI: -p, -v, -e, --memory, kill -s, -- CMD.

Each parser returns typed values or raises CliError naming the bad value, so
`vxmesh run` fails before anything is sent.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
from collections.abc import Mapping

from proto.records import Mount, PortMapping


class CliError(Exception):
    """A one-line error for the user."""


class OutcomeUnknownError(CliError):
    """A change that may or may not have been carried out: exits OUTCOME_UNKNOWN_EXIT."""


_PORT = re.compile(r"^(?:(?P<host>\d+):)?(?P<container>\d+)(?:/(?P<proto>[a-z]+))?$")
_SIZE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[bkmg]?)$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def parse_port(text: str) -> PortMapping:
    """HOST_PORT:CONTAINER_PORT[/PROTO] or CONTAINER_PORT[/PROTO] (a free host port is chosen)."""
    match = _PORT.match(text)
    if match is None:
        raise CliError(f"invalid -p {text!r}: expected HOST_PORT:CONTAINER_PORT[/tcp|/udp] "
                       "or CONTAINER_PORT[/tcp|/udp]")
    protocol = match["proto"] or "tcp"
    if protocol not in ("tcp", "udp"):
        raise CliError(f"invalid -p {text!r}: protocol must be tcp or udp, not {protocol!r}")
    host_port = int(match["host"] or 0)
    container_port = int(match["container"])
    for what, port in (("container", container_port), ("host", host_port)):
        if port > 65535 or (what == "container" and port == 0) or (match[what] is not None and port == 0):
            raise CliError(f"invalid -p {text!r}: the {what} port must be 1-65535")
    return PortMapping(protocol=protocol, host_port=host_port, container_port=container_port)


def parse_volume(text: str) -> Mount:
    """SOURCE:TARGET[:ro|:rw], both absolute paths."""
    parts = text.split(":")
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        readonly = parts[2] == "ro"
        parts = parts[:2]
    elif len(parts) == 2:
        readonly = False
    else:
        raise CliError(f"invalid -v {text!r}: expected HOST_DIR:CONTAINER_DIR[:ro]")
    source, target = parts
    if not source.startswith("/") or not target.startswith("/"):
        raise CliError(f"invalid -v {text!r}: both paths must be absolute (named volumes are not supported)")
    return Mount(source=source, target=target, readonly=readonly)


def parse_size(text: str) -> int:
    """Docker's memory sizes: 64m, 1g, 512k, or bytes."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise CliError(f"invalid size {text!r}: expected a number with an optional unit b, k, m or g")
    return int(float(match["number"]) * _UNITS[match["unit"].lower()])


def parse_signal(text: str) -> int:
    """KILL, SIGKILL or 9."""
    if text.isdigit():
        number = int(text)
        try:
            signal.Signals(number)
        except ValueError:
            raise CliError(f"invalid signal {text!r}") from None
        return number
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise CliError(f"invalid signal {text!r}") from None


def format_port(port: PortMapping) -> str:
    return f"0.0.0.0:{port.host_port}->{port.container_port}/{port.protocol}"


def parse_command(args: argparse.Namespace) -> list[str]:
    """The CMD [ARG...] after the options (a leading `--` dropped); required."""
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise CliError(f"'vxmesh {args.command}' needs a command: vxmesh {args.command} ... -- CMD [ARG...]")
    return cmd


def parse_env(pairs: list[str], caller: Mapping[str, str] | None = None) -> dict[str, str]:
    """-e KEY=VALUE, repeated; -e KEY takes KEY's value from the caller's
    environment (`caller`, default os.environ) and is left out when it has none, as Docker."""
    caller = os.environ if caller is None else caller
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key:
            raise CliError(f"invalid environment variable {pair!r}: expected KEY=VALUE or KEY")
        if not sep:
            if key not in caller:
                continue
            value = caller[key]
        env[key] = value
    return env


def parse_labels(items: list[str]) -> dict[str, str]:
    """--label KEY[=VALUE], repeated."""
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise CliError(f"--label {item!r} is not KEY[=VALUE]")
        labels[key] = value
    return labels


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, what: str) -> float:
    """Docker's durations as --restart-delay takes them: 500ms, 5s, 1m (bare: seconds)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise CliError(f"invalid {what} {text!r}: use a duration such as 500ms, 5s or 1m")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
