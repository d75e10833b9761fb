"""The config files of `vxmesh controller` and `vxmesh agent`, and how flags override them.

One schema per daemon lists every option once. Each option is a key in the
TOML file and a flag of the same name (`data-dir` / `--data-dir`); a flag
that is given wins over the file, the file over the default. The same schema
checks a file, adds the flags to the command line and writes the commented
config files that `deploy/` installs and the namespace lab runs from, so the
three cannot drift apart.

Standard library only (tomllib, Python 3.11): the provisioning script renders
config files with it before vxmesh and its dependencies are installed.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.names import HOST_NAME_RE

# Values an option may hold: TOML strings, integers, booleans, or arrays of strings.
Value = str | int | bool | list[str]


class ConfigError(Exception):
    """A config file or flag that cannot be used; the message is one line naming the file and key."""


@dataclass(frozen=True)
class Option:
    key: str                              # in the file; the flag is --key
    kind: type                            # str, int, bool, or list (of strings)
    default: Value | None                 # None: required, from the file or a flag
    help: str                             # one or more sentences for --help and the config files
    check: Callable[[Value], str | None] | None = None   # returns what is wrong, or None

    @property
    def dest(self) -> str:
        # Prefixed so no option can shadow the CLI's global --controller.
        return "cfg_" + self.key.replace("-", "_")

    @property
    def flag(self) -> str:
        return f"--{self.key}"

    @property
    def metavar(self) -> str:
        return self.key.upper().replace("-", "_")


@dataclass(frozen=True)
class Schema:
    daemon: str                           # "controller" or "agent": `vxmesh <daemon> --config FILE`
    options: tuple[Option, ...]

    def option(self, key: str) -> Option:
        for option in self.options:
            if option.key == key:
                return option
        raise KeyError(key)

    @property
    def keys(self) -> list[str]:
        return [o.key for o in self.options]


# ---- value checks ---------------------------------------------------------------

def _positive(value: Value) -> str | None:
    return None if isinstance(value, int) and value > 0 else "must be a positive number of seconds"


def _ipv4_address(value: Value) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return "must be an IPv4 address such as 10.0.0.11"
    return None


def _ipv4_subnet(value: Value) -> str | None:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return "must be an IPv4 subnet in CIDR form with no host bits set, such as 172.18.0.0/16"
    return None if network.num_addresses >= 4 else "is too small to hold a gateway and a container"


def _host_port_list(value: Value) -> str | None:
    for item in value:
        host, sep, port = item.rpartition(":")
        if item.startswith("unix://"):
            continue
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            return f"has {item!r}, which is not host:port or unix:///path"
    return None


def _nonempty_list(value: Value) -> str | None:
    return None if value else "must name at least one address"


def _both(*checks: Callable[[Value], str | None]) -> Callable[[Value], str | None]:
    def check(value: Value) -> str | None:
        return next((problem for c in checks if (problem := c(value)) is not None), None)
    return check


def _host_name(value: Value) -> str | None:
    ok = HOST_NAME_RE.match(value)
    return None if ok else "must be lowercase letters, digits and '-', at most 24 characters"


def _on_off(value: Value) -> str | None:
    return None if value in ("on", "off") else "must be \"on\" or \"off\""


def _etcd_prefix(value: Value) -> str | None:
    return None if value.startswith("/") and value.endswith("/") else "must start and end with '/'"


def _absolute_path(value: Value) -> str | None:
    return None if value.startswith("/") else "must be an absolute path"


def _absolute_path_or_empty(value: Value) -> str | None:
    return None if not value or value.startswith("/") else "must be an absolute path, or empty"


# Where deploy/provision.sh installs the certificates `vxmesh certs` made.
TLS_DIR = "/etc/vxmesh/tls"


def _tls_options(role: str) -> tuple[Option, ...]:
    """The CA, certificate and key of a daemon running as `role`, and the way out of TLS."""
    return (
        Option("ca", str, f"{TLS_DIR}/ca.pem",
               "The cluster CA's certificate: peers must present a certificate it signed.",
               _absolute_path),
        Option("cert", str, f"{TLS_DIR}/{role}.pem",
               f"This {role}'s certificate (`vxmesh certs issue`), signed by the CA.", _absolute_path),
        Option("key", str, f"{TLS_DIR}/{role}-key.pem",
               "Its private key (mode 0600; never logged).", _absolute_path),
        Option("insecure", bool, False,
               "Speak plain-text gRPC instead of mutual TLS, without certificates: anyone "
               "reaching the ports can act as any host or user. Only for a private test "
               "network; logs a warning."),
    )


# ---- the two daemons ------------------------------------------------------------------

CONTROLLER = Schema("controller", (
    Option("listen", list, ["127.0.0.1:7946"],
           "Addresses to serve the user API and the agents' streams on: host:port "
           "or unix:///path.",
           _both(_nonempty_list, _host_port_list)),
    Option("etcd", list, [],
           "etcd client URLs (http://host:2379), e.g. every member of a cluster: calls "
           "move to the next one when one fails. Empty: run a private single-member "
           "etcd on loopback, with its data in data-dir."),
    Option("data-dir", str, "/var/lib/vxmesh/etcd",
           "Data directory of the private etcd (only used when etcd is empty)."),
    Option("prefix", str, "/vxmesh/",
           "Prefix of every key vxmesh keeps in etcd; controllers sharing a cluster and "
           "a prefix share one state.", _etcd_prefix),
    Option("host-ttl", int, 6,
           "Seconds without a heartbeat before a host is shown down and its lease ends.",
           _positive),
    *_tls_options("controller"),
    Option("etcd-ca", str, "",
           "CA certificate to verify https:// etcd members with. Empty: the ca above.",
           _absolute_path_or_empty),
    Option("etcd-cert", str, "",
           "Client certificate for https:// etcd members (with --client-cert-auth). "
           "Empty: the cert above.", _absolute_path_or_empty),
    Option("etcd-key", str, "",
           "Its private key. Empty: the key above.", _absolute_path_or_empty),
))

AGENT = Schema("agent", (
    Option("name", str, None,
           "This host's name, unique in the cluster: lowercase letters, digits and '-', "
           "at most 24 characters. Names its namespaces and cgroups.", _host_name),
    Option("controller", list, None,
           "Controller addresses (host:port); the agent moves to the next one when its "
           "stream breaks and resumes where it was.",
           _both(_nonempty_list, _host_port_list)),
    Option("vtep-ip", str, None,
           "This host's underlay address: the VXLAN tunnel endpoint, on the interface "
           "whose MTU the overlay follows.", _ipv4_address),
    Option("api", str, "",
           "Where to serve exec, logs and tables to the controller (host:port). "
           "Empty: VTEP_IP:7947."),
    Option("state-root", str, "/run/vxmesh",
           "Directory for per-host state: containers, their logs and network records. "
           "Keep it on tmpfs: it describes processes and namespaces that a reboot ends."),
    Option("gwbridge-subnet", str, "172.18.0.0/16",
           "Subnet of vxm_gwbridge, the egress (NAT) bridge of overlay containers "
           "(Docker's docker_gwbridge).", _ipv4_subnet),
    Option("bridge-subnet", str, "172.17.0.0/16",
           "Subnet of this host's default 'bridge' network (Docker's docker0).", _ipv4_subnet),
    Option("vtep-filter", str, "on",
           "'on': accept VXLAN (UDP 4789) only from the VTEPs of hosts currently in the "
           "cluster, dropping and counting the rest (nft table inet vxmesh_vtep, counter "
           "vxlan_rejected). 'off': accept it from anywhere, as plain VXLAN does.", _on_off),
    *_tls_options("agent"),
))

AGENT_API_PORT = 7947


# ---- reading -------------------------------------------------------------------

_KIND_NAMES = {str: "a string", int: "an integer", bool: "a boolean (true or false)",
               list: "an array of strings"}


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", int: "an integer", float: "a float",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _typed(option: Option, value: Any) -> bool:
    if option.kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if option.kind is bool:
        return isinstance(value, bool)
    # bool is an int subclass in Python; `host-ttl = true` is still a mistake.
    return isinstance(value, option.kind) and not isinstance(value, bool)


def read_file(schema: Schema, path: Path) -> dict[str, Value]:
    """The options set in `path`, checked: unknown keys, wrong types and bad values fail."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    values: dict[str, Value] = {}
    for key, value in data.items():
        try:
            option = schema.option(key)
        except KeyError:
            raise ConfigError(f"{path}: unknown key {key!r}; the {schema.daemon} config keys are "
                              f"{', '.join(schema.keys)}") from None
        if not _typed(option, value):
            raise ConfigError(f"{path}: key {key!r} must be {_KIND_NAMES[option.kind]}, "
                              f"not {_toml_type(value)} ({toml_value(value)})")
        _check(option, value, f"{path}: key {key!r}")
        values[key] = value
    return values


def _check(option: Option, value: Value, where: str) -> None:
    if option.check is not None and (problem := option.check(value)) is not None:
        raise ConfigError(f"{where} {problem} (got {toml_value(value)})")


# ---- the command line --------------------------------------------------------------

def add_flags(parser: argparse.ArgumentParser, schema: Schema, *, config_flag: bool = True) -> None:
    """--config FILE and one flag per option; flags default to "not given"."""
    if config_flag:
        parser.add_argument("--config", type=Path, metavar="FILE",
                            help=f"read options from this TOML file (e.g. /etc/vxmesh/{schema.daemon}.toml); "
                                 "flags override it")
    for option in schema.options:
        default = "required" if option.default is None else f"default {toml_value(option.default)}"
        if option.kind is list:
            parser.add_argument(option.flag, dest=option.dest, action="append", default=None,
                                metavar=f"{option.metavar}[,...]",
                                help=f"{option.help} Repeatable or comma separated ({default}).")
        elif option.kind is bool:
            # A switch: given means true; not given leaves the file's value.
            parser.add_argument(option.flag, dest=option.dest, action="store_const", const=True,
                                default=None, help=f"{option.help} ({default})")
        else:
            parser.add_argument(option.flag, dest=option.dest, type=option.kind, default=None,
                                metavar=option.metavar, help=f"{option.help} ({default})")


def given_flags(args: argparse.Namespace, schema: Schema) -> dict[str, Value]:
    """The options given on the command line, by key; list flags split at commas."""
    flags: dict[str, Value] = {}
    for option in schema.options:
        value = getattr(args, option.dest, None)
        if value is None:
            continue
        if option.kind is list:
            value = [item.strip() for arg in value for item in arg.split(",") if item.strip()]
        _check(option, value, f"flag {option.flag}")
        flags[option.key] = value
    return flags


def resolve(schema: Schema, config: Path | None, flags: Mapping[str, Value]) -> dict[str, Value]:
    """Every option's value: the flag if given, else the file's, else the default."""
    from_file = read_file(schema, config) if config is not None else {}
    values: dict[str, Value] = {}
    for option in schema.options:
        if option.key in flags:
            values[option.key] = flags[option.key]
        elif option.key in from_file:
            values[option.key] = from_file[option.key]
        elif option.default is not None:
            values[option.key] = option.default
        else:
            where = f"in {config} or " if config is not None else ""
            raise ConfigError(f"vxmesh {schema.daemon} needs {option.key!r}: set it {where}"
                              f"with {option.flag}")
    return values


def agent_api(values: Mapping[str, Value]) -> str:
    """The agent's API address: as configured, or its VTEP address on the default port."""
    return values["api"] or f"{values['vtep-ip']}:{AGENT_API_PORT}"


def first_host(subnet: str) -> str:
    """The gateway address of a subnet the schema already checked."""
    return str(next(ipaddress.IPv4Network(subnet).hosts()))


# ---- writing -------------------------------------------------------------------

def toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, (str, bool)):
        # A JSON string literal is a valid TOML basic string; true/false are TOML's too.
        return json.dumps(value)
    if isinstance(value, dict):
        return "{...}"  # only ever shown in an error about a table where a value belongs
    return str(value)


def comment_lines(text: str, width: int = 78) -> list[str]:
    lines, line = [], "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width and line != "#":
            lines.append(line)
            line = "#"
        line += " " + word
    return lines + [line]


def render(schema: Schema, values: Mapping[str, Value], header: str) -> str:
    """A config file setting `values` and showing every other option at its
    default, commented out, each with its documentation."""
    unknown = set(values) - set(schema.keys)
    if unknown:
        raise ConfigError(f"cannot write a {schema.daemon} config with unknown keys {sorted(unknown)}")
    out = comment_lines(header) + [
        "#",
        f"# Read by `vxmesh {schema.daemon} --config FILE`. Every option is listed with",
        "# its default; a commented-out option has its default value. A flag of the",
        "# same name (--key VALUE) overrides the file.",
    ]
    for option in schema.options:
        out.append("")
        out += comment_lines(option.help)
        if option.default is None:
            out.append("# Required.")
        else:
            out.append(f"# Default: {toml_value(option.default)}")
        if option.key in values:
            value = values[option.key]
            if not _typed(option, value):
                raise ConfigError(f"cannot write {option.key!r} = {value!r}: "
                                  f"must be {_KIND_NAMES[option.kind]}")
            _check(option, value, f"cannot write key {option.key!r}:")
            out.append(f"{option.key} = {toml_value(value)}")
        elif option.default is None:
            raise ConfigError(f"cannot write a {schema.daemon} config without {option.key!r}")
        else:
            out.append(f"# {option.key} = {toml_value(option.default)}")
    return "\n".join(out) + "\n"
