"""How a daemon's config file and its flags are read, checked and written.

Each daemon declares its options once, as a `Schema` in its own package
(controller/config.py, agent/config.py). Each option is a key in the TOML
file and a flag of the same name (`data-dir` / `--data-dir`); a flag that is
given wins over the file, the file over the default. The same schema checks
a file, adds the flags to the command line and writes the commented config
files that `deploy/` installs and the namespace lab runs from, so the three
cannot drift apart.

Standard library only (tomllib, Python 3.11): the provisioning script renders
config files with it before vxmesh and its dependencies are installed.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proto import cluster_registry, validate
from proto.addresses import parse_host_port, parse_ip, parse_subnet, reserved_clash
from proto.errors import InvalidArgument

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

def positive(value: Value) -> str | None:
    return None if isinstance(value, int) and value > 0 else "must be a positive number of seconds"


def seconds_or_zero(value: Value) -> str | None:
    return None if isinstance(value, int) and value >= 0 else "must be a number of seconds, 0 or more"


def ipv4_address(value: Value) -> str | None:
    try:
        parse_ip(value, families=(4,))
    except InvalidArgument:
        return "must be an IPv4 address such as 10.0.0.11"
    return None


def ipv4_subnet(value: Value) -> str | None:
    try:
        network = parse_subnet(value, families=(4,), bounded=False)
    except InvalidArgument:
        return "must be an IPv4 subnet in CIDR form with no host bits set, such as 172.18.0.0/16"
    clash = reserved_clash(network)
    if clash is not None:
        return f"overlaps {clash}: no network may use it"
    return None if network.num_addresses >= 4 else "is too small to hold a gateway and a container"


def host_port_list(value: Value) -> str | None:
    for item in value:
        try:
            parse_host_port(item, unix_ok=True)
        except InvalidArgument:
            return f"has {item!r}, which is not host:port or unix:///path"
    return None


def nonempty_list(value: Value) -> str | None:
    return None if value else "must name at least one address"


def both(*checks: Callable[[Value], str | None]) -> Callable[[Value], str | None]:
    def check(value: Value) -> str | None:
        return next((problem for c in checks if (problem := c(value)) is not None), None)
    return check


def host_name(value: Value) -> str | None:
    try:
        validate.host_name(value)
    except InvalidArgument:
        return f"must be {validate.HOST_NAME_RULE}"
    return None


def on_off(value: Value) -> str | None:
    return None if value in ("on", "off") else "must be \"on\" or \"off\""


def etcd_prefix(value: Value) -> str | None:
    return None if value.startswith("/") and value.endswith("/") else "must start and end with '/'"


def absolute_path(value: Value) -> str | None:
    return None if value.startswith("/") else "must be an absolute path"


def registry_or_empty(value: Value) -> str | None:
    if not value:
        return None
    try:
        cluster_registry.check_registry(value)
    except InvalidArgument:
        return "must be a registry's HOST:PORT (e.g. 10.0.0.2:5000), or empty"
    return None


# Where deploy/provision.sh installs the certificates `vxmesh certs` made.
TLS_DIR = "/etc/vxmesh/tls"


def tls_options(role: str) -> tuple[Option, ...]:
    """The CA, certificate and key of a daemon running as `role`, and the way out of TLS."""
    return (
        Option("ca", str, f"{TLS_DIR}/ca.pem",
               "The cluster CA's certificate: peers must present a certificate it signed.",
               absolute_path),
        Option("cert", str, f"{TLS_DIR}/{role}.pem",
               f"This {role}'s certificate (`vxmesh certs issue`), signed by the CA.", absolute_path),
        Option("key", str, f"{TLS_DIR}/{role}-key.pem",
               "Its private key (mode 0600; never logged).", absolute_path),
        Option("insecure", bool, False,
               "Speak plain-text gRPC instead of mutual TLS, without certificates: anyone "
               "reaching the ports can act as any host or user. Only for a private test "
               "network; logs a warning."),
    )


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
    # Imported here: the CLI imports this module for its defaults, and reads no config file.
    import tomllib
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
