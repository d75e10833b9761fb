"""What `vxmesh run` may ask for, checked before anything is written.

Pure functions: the validity of published ports, bind mounts, resource
limits, the process's overrides of its image and its confinement
(capabilities, seccomp, ulimits), given the container's network mode
(proto/network_mode.py). The API and the store call them so bad input fails
with one clear message and changes nothing. Port numbers and protocols
follow proto/validate.py, capabilities proto/capabilities.py, ulimits and
seccomp proto/run_options.py: the same rules the CLI and the agent apply.
"""
from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable
import dataclasses
from dataclasses import dataclass

from proto import capabilities, validate
from proto import run_options as docker_options
from proto.errors import InvalidArgument
from proto.image_config import HealthSettings
from proto.network_mode import NetworkMode
from proto.records import Mount, PortMapping, Ulimit

MAX_ALIASES = 32

# Docker's lower bound: less than this cannot start a process.
MIN_MEMORY = 6 * 1024 * 1024
# -u NAME, UID, NAME:GROUP or UID:GID (resolved in the container's /etc/passwd at start).
_USER = re.compile(r"^[^:\s]+(?::[^:\s]+)?$")


@dataclass(frozen=True)
class RunImage:
    """The image `run` resolved in the cluster's registry (controller/images/)."""
    reference: str = ""                     # canonical: docker.io/library/busybox:latest
    digest: str = ""                        # of its manifest: what every start pulls
    id: str = ""                            # of its configuration (Docker's IMAGE ID)
    exposed_ports: tuple[str, ...] = ()     # "80/tcp"
    healthcheck: HealthSettings | None = None   # its HEALTHCHECK, Docker's defaults filled in


@dataclass(frozen=True)
class RunOptions:
    """Everything of a run request beyond name, host, command and networks."""
    ports: tuple[PortMapping, ...] = ()
    mounts: tuple[Mount, ...] = ()
    memory_bytes: int = 0
    cpus: float = 0.0
    pids_limit: int = 0
    stop_timeout: int = 10
    image: RunImage = RunImage()
    # The image's defaults overridden (`entrypoint` only when `entrypoint_set`).
    entrypoint: tuple[str, ...] = ()
    entrypoint_set: bool = False
    working_dir: str = ""
    user: str = ""
    read_only: bool = False
    # Confinement, as proto/vxmesh.proto's ContainerSpec holds it.
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    seccomp: str = docker_options.SECCOMP_DEFAULT
    seccomp_profile: str = ""
    allow_new_privileges: bool = False
    ulimits: tuple[Ulimit, ...] = ()
    # --network-alias: more names for the container on each of its networks (agent/dns).
    aliases: tuple[str, ...] = ()
    ip: str = ""            # --ip: the address on the first network
    publish_all: bool = False                # -P
    expose: tuple[str, ...] = ()             # --expose, "80/tcp"
    labels: tuple[tuple[str, str], ...] = ()  # --label, as (key, value) pairs
    remove_on_exit: bool = False             # run -d --rm
    restart_policy: str = ""
    restart_max_retries: int = 0
    open_stdin: bool = False                 # -i
    tty: bool = False                        # -t
    # A health check (services' tasks): `sh -c health_cmd` every interval.
    health_cmd: str = ""
    health_interval: float = 0.0
    health_timeout: float = 0.0
    health_retries: int = 0
    health_start_period: float = 0.0
    # --no-healthcheck: not the image's HEALTHCHECK either (with_image copies it otherwise).
    no_healthcheck: bool = False


def from_request(request) -> RunOptions:
    """A RunRequest's options (proto/vxmesh.proto), capabilities spelled canonically; unchecked."""
    return RunOptions(
        ports=tuple(PortMapping.from_wire(p) for p in request.ports),
        mounts=tuple(Mount.from_wire(m) for m in request.mounts), memory_bytes=request.memory_bytes,
        cpus=request.cpus, pids_limit=request.pids_limit,
        entrypoint=tuple(request.entrypoint), entrypoint_set=request.entrypoint_set,
        working_dir=request.working_dir, user=request.user, read_only=request.read_only,
        cap_add=canonical_capabilities(request.cap_add, "--cap-add"),
        cap_drop=canonical_capabilities(request.cap_drop, "--cap-drop"),
        privileged=request.privileged, seccomp=request.seccomp or docker_options.SECCOMP_DEFAULT,
        seccomp_profile=request.seccomp_profile, allow_new_privileges=request.allow_new_privileges,
        ulimits=tuple(Ulimit.from_wire(u) for u in request.ulimits), aliases=tuple(request.aliases),
        ip=request.ip, publish_all=request.publish_all, expose=tuple(canonical_port(p) for p in request.expose),
        labels=tuple(sorted(request.labels.items())), remove_on_exit=request.auto_remove and request.detach,
        restart_policy=request.restart_policy, restart_max_retries=request.restart_max_retries,
        open_stdin=request.interactive, tty=request.tty, no_healthcheck=request.no_healthcheck)


def canonical_port(text: str) -> str:
    """--expose PORT[/PROTO] as the image's ExposedPorts write it: "80/tcp"."""
    port, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    try:
        validate.protocol(protocol)
        validate.port(int(port) if port.isdigit() else -1, "exposed port")
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid --expose {text!r}: {err}") from None
    return f"{int(port)}/{protocol}"


def with_image(options: RunOptions, image: RunImage) -> RunOptions:
    """The options once the image is known: its ExposedPorts and --expose's are
    the container's, -P publishes each not published already on a free host port,
    and its HEALTHCHECK is the container's unless --health-cmd or --no-healthcheck."""
    exposed = tuple(dict.fromkeys((*image.exposed_ports, *options.expose)))
    ports = options.ports
    if options.publish_all:
        published = {f"{p.container_port}/{p.protocol}" for p in ports}
        ports += tuple(PortMapping(text.partition("/")[2], 0, int(text.partition("/")[0]))
                       for text in exposed if text not in published)
    options = with_image_health(options, image.healthcheck)
    return dataclasses.replace(options, image=dataclasses.replace(image, exposed_ports=exposed), ports=ports)


def with_image_health(options: RunOptions, check: HealthSettings | None) -> RunOptions:
    """The image's health check as the container's, when it has none of its own and
    --no-healthcheck was not given (Docker's rule)."""
    if check is None or options.health_cmd or options.no_healthcheck:
        return options
    return dataclasses.replace(options, health_cmd=check.cmd, health_interval=check.interval,
                               health_timeout=check.timeout, health_retries=check.retries,
                               health_start_period=check.start_period)


def check_aliases(aliases) -> None:
    """Network aliases are names a DNS answers for: RFC 1123 host names, a few."""
    if len(aliases) > MAX_ALIASES:
        raise InvalidArgument(f"too many network aliases: {len(aliases)} (at most {MAX_ALIASES})")
    for alias in aliases:
        try:
            validate.hostname(alias)
        except InvalidArgument as err:
            raise InvalidArgument(f"invalid network alias: {err}") from None


def canonical_capabilities(names: Iterable[str], flag: str) -> tuple[str, ...]:
    """CAP_NAME (or ALL) for each, once, in the order given."""
    try:
        return tuple(dict.fromkeys(capabilities.canonical(n) for n in names))
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid {flag}: {err}") from None


def check_options(options: RunOptions, mode: NetworkMode) -> None:
    check_ports(options.ports, mode)
    check_mounts(options.mounts)
    check_process(options)
    check_confinement(options)
    check_aliases(options.aliases)
    if options.ip and not mode.attaches:
        raise InvalidArgument(f"conflicting options: --ip and --network {mode.text}")
    if options.memory_bytes and options.memory_bytes < MIN_MEMORY:
        raise InvalidArgument(
            f"invalid --memory {options.memory_bytes}: the minimum is {MIN_MEMORY} bytes (6 MiB)")
    if options.memory_bytes < 0 or options.pids_limit < 0:
        raise InvalidArgument("--memory and --pids-limit must not be negative")
    if options.cpus < 0 or not math.isfinite(options.cpus):
        raise InvalidArgument(f"invalid --cpus {options.cpus}: it must be a positive number")
    if (options.restart_policy or "no") not in docker_options.RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy {options.restart_policy!r}: use no, on-failure, "
                              "always or unless-stopped")
    if options.restart_max_retries and options.restart_policy != "on-failure":
        raise InvalidArgument("only the on-failure restart policy takes a maximum of restarts")
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


def check_mounts(mounts: Iterable[Mount]) -> None:
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


def check_process(options: RunOptions) -> None:
    """-w and -u: an absolute directory, a user the container's /etc/passwd can resolve."""
    if options.working_dir and (not posixpath.isabs(options.working_dir) or "\0" in options.working_dir):
        raise InvalidArgument(f"invalid -w {options.working_dir!r}: the working directory must be "
                              "an absolute path")
    if options.user and not _USER.fullmatch(options.user):
        raise InvalidArgument(f"invalid -u {options.user!r}: use NAME, UID, NAME:GROUP or UID:GID")
    if not options.entrypoint_set and options.entrypoint:
        raise InvalidArgument("an entrypoint was given without entrypoint_set")


def check_confinement(options: RunOptions) -> None:
    """--cap-add/--cap-drop, --security-opt seccomp and --ulimit, as the agent will apply them."""
    for flag, names in (("--cap-add", options.cap_add), ("--cap-drop", options.cap_drop)):
        for name in names:
            if capabilities.canonical(name) != name:
                raise InvalidArgument(f"invalid {flag} {name!r}: not a canonical capability name")
    try:
        docker_options.check_seccomp(options.seccomp, options.seccomp_profile)
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid --security-opt: {err}") from None
    docker_options.check_ulimits(options.ulimits)
