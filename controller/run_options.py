"""What `vxmesh run` may ask for, checked before anything is written.

Pure functions: the network mode a list of `--network` values means, and
the validity of published ports, bind mounts and resource limits. The store
calls them so bad input fails with one clear message and changes nothing.
"""
from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from proto.errors import InvalidArgument, ResourceExhausted
from proto import validate
from proto.records import Mount, PortMapping

# Networks every installation has, as in Docker: name -> driver.
BUILTIN_NETWORKS = {"bridge": "bridge", "host": "host", "none": "null"}
DEFAULT_NETWORK = "bridge"
# The modes that replace a container's own interfaces, Docker's --network values.
EXCLUSIVE_MODES = ("host", "none")

PROTOCOLS = ("tcp", "udp")
# Where a free host port is chosen for `-p CONTAINER_PORT` (Linux's default
# ephemeral range, as Docker uses).
EPHEMERAL_PORTS = range(32768, 61000)
# Docker's lower bound: less than this cannot start a process.
MIN_MEMORY = 6 * 1024 * 1024


@dataclass(frozen=True)
class RunOptions:
    """Everything of a run request beyond name, host, command and networks."""
    ports: tuple[PortMapping, ...] = ()
    rootfs: str = ""
    mounts: tuple[Mount, ...] = ()
    memory_bytes: int = 0
    cpus: float = 0.0
    pids_limit: int = 0
    stop_timeout: int = 10


@dataclass(frozen=True)
class NetworkChoice:
    mode: str                                        # "" or "host", "none", "container:NAME"
    networks: list[str] = field(default_factory=list)  # networks to attach when mode is ""


def network_choice(values: Iterable[str]) -> NetworkChoice:
    """Docker's meaning of the --network values: none given is the default bridge."""
    values = list(values)
    if not values:
        return NetworkChoice("", [DEFAULT_NETWORK])
    special = [v for v in values if v in EXCLUSIVE_MODES or v.startswith("container:")]
    if special:
        if len(values) > 1:
            raise InvalidArgument(
                f"--network {special[0]} cannot be combined with other networks ({', '.join(values)})")
        mode = special[0]
        if mode.startswith("container:"):
            validate.name("container", mode.partition(":")[2])
        return NetworkChoice(mode)
    for value in values:
        validate.name("network", value)
        if values.count(value) > 1:
            raise InvalidArgument(f"network {value!r} is listed twice")
    return NetworkChoice("", values)


def check_options(options: RunOptions, mode: str) -> None:
    check_ports(options.ports, mode)
    check_mounts(options.mounts, options.rootfs)
    if options.memory_bytes and options.memory_bytes < MIN_MEMORY:
        raise InvalidArgument(
            f"invalid --memory {options.memory_bytes}: the minimum is {MIN_MEMORY} bytes (6 MiB)")
    if options.memory_bytes < 0 or options.pids_limit < 0:
        raise InvalidArgument("--memory and --pids-limit must not be negative")
    if options.cpus < 0 or not math.isfinite(options.cpus):
        raise InvalidArgument(f"invalid --cpus {options.cpus}: it must be a positive number")
    if options.stop_timeout < 0:
        raise InvalidArgument(f"invalid stop timeout {options.stop_timeout}: it must not be negative")


def check_ports(ports: Iterable[PortMapping], mode: str) -> None:
    ports = list(ports)
    if ports and mode:
        raise InvalidArgument(
            f"conflicting options: port publishing and --network {mode} "
            "(the container has no interface of its own to publish)")
    seen: set[tuple[str, int]] = set()
    for port in ports:
        if port.protocol not in PROTOCOLS:
            raise InvalidArgument(f"invalid protocol {port.protocol!r} in -p {port}: use tcp or udp")
        if not 1 <= port.container_port <= 65535:
            raise InvalidArgument(f"invalid container port {port.container_port} in -p {port}: use 1-65535")
        if not 0 <= port.host_port <= 65535:
            raise InvalidArgument(f"invalid host port {port.host_port} in -p {port}: use 1-65535")
        if port.host_port:
            key = (port.protocol, port.host_port)
            if key in seen:
                raise InvalidArgument(f"host port {port.host_port}/{port.protocol} is published twice")
            seen.add(key)


def check_mounts(mounts: Iterable[Mount], rootfs: str) -> None:
    if rootfs and not posixpath.isabs(rootfs):
        raise InvalidArgument(f"invalid --rootfs {rootfs!r}: it must be an absolute path")
    targets: set[str] = set()
    for mount in mounts:
        for what, path in (("source", mount.source), ("target", mount.target)):
            if not posixpath.isabs(path):
                raise InvalidArgument(f"invalid -v {mount.source}:{mount.target}: the {what} must be an absolute path")
            if ".." in path.split("/"):
                raise InvalidArgument(f"invalid -v {mount.source}:{mount.target}: '..' is not allowed in paths")
        target = posixpath.normpath(mount.target)
        if target == "/":
            raise InvalidArgument(f"invalid -v {mount.source}:{mount.target}: cannot mount over /")
        if target in targets:
            raise InvalidArgument(f"duplicate mount point {target}")
        targets.add(target)


def pick_host_port(protocol: str, taken: set[tuple[str, int]], start: int | None = None) -> int:
    """The first free ephemeral port at or after `start` (wrapping around)."""
    first, size = EPHEMERAL_PORTS.start, len(EPHEMERAL_PORTS)
    offset0 = 0 if start is None else (start - first) % size
    for offset in range(size):
        port = first + (offset0 + offset) % size
        if (protocol, port) not in taken:
            return port
    raise ResourceExhausted(f"no free host port left for {protocol} in {first}-{first + size - 1}")
