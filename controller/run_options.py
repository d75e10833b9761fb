"""What `vxmesh run` may ask for, checked before anything is written.

Pure functions: the validity of published ports, bind mounts and resource
limits, given the container's network mode (proto/network_mode.py). The
store calls them so bad input fails with one clear message and changes
nothing. Port numbers and protocols follow proto/validate.py.
"""
from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from proto import validate
from proto.errors import InvalidArgument
from proto.network_mode import NetworkMode
from proto.records import Mount, PortMapping

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


def check_options(options: RunOptions, mode: NetworkMode) -> None:
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


def check_ports(ports: Iterable[PortMapping], mode: NetworkMode) -> None:
    ports = list(ports)
    if ports and not mode.attaches:
        raise InvalidArgument(
            f"conflicting options: port publishing and --network {mode.text} "
            "(the container has no interface of its own to publish)")
    seen: set[tuple[str, int]] = set()
    for port in ports:
        try:
            validate.protocol(port.protocol)
            validate.port(port.container_port, "container port")
            validate.port(port.host_port, "host port", zero_ok=True)
        except InvalidArgument as err:
            raise InvalidArgument(f"{err} (in -p {port})") from None
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
