"""What to run and what was observed: the runtime's typed config and state.

`ContainerConfig` is `docker run`'s options, resolved by the agent: the image
(already in the host's store), the overrides (`--entrypoint`, COMMAND, `-e`,
`-w`, `-u`), the network namespace the agent prepared, binds, limits and
the confinement. The runtime turns it into an OCI bundle (spec.py).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agent.images.image import Image
from proto import capabilities
from proto.errors import InvalidArgument
from proto.records import Mount, Ulimit
from proto.run_options import SECCOMP_DEFAULT, SECCOMP_PROFILE, SECCOMP_UNCONFINED, check_seccomp_profile

CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")
HOST_NAME_MAX = 64  # bytes, as sethostname(2) allows

CREATED = "created"
RUNNING = "running"
EXITED = "exited"

# Docker's floor for --memory: below it a container cannot even start.
MIN_MEMORY_BYTES = 6 * 1024 * 1024
# The kernel refuses CFS quotas under 1 ms per 100 ms period.
MIN_CPUS = 0.01


class ContainerError(Exception):
    """A container operation failed; the message names the container and the cause."""


@dataclass(frozen=True)
class Resources:
    """Limits enforced through the container's cgroup; 0 means unlimited."""
    memory_bytes: int = 0   # --memory (swap is not allowed on top: memory+swap = memory)
    cpus: float = 0.0       # --cpus: 1.5 = 150 ms of CPU time per 100 ms period
    pids_limit: int = 0     # --pids-limit


@dataclass(frozen=True)
class Security:
    """Confinement: Docker's defaults unless switched off or widened."""
    privileged: bool = False               # every capability, no seccomp, no masked paths
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp: str = SECCOMP_DEFAULT         # default | unconfined | profile
    seccomp_profile: str = ""              # JSON text when seccomp == "profile"
    no_new_privileges: bool = True         # setuid binaries cannot raise privileges

    def capabilities(self) -> list[str]:
        return capabilities.resolve(self.cap_add, self.cap_drop, privileged=self.privileged,
                                    available=_bounding_set())


@dataclass(frozen=True)
class ContainerConfig:
    id: str                                 # 64 hex chars
    name: str
    image: Image
    hostname: str
    # The network namespace to join, by path (/run/netns/<name> the agent
    # prepared, or another container's); "" = the host's (--network host).
    netns_path: str
    entrypoint: tuple[str, ...] | None = None   # --entrypoint; None = the image's, () clears it
    command: tuple[str, ...] | None = None      # COMMAND [ARG...]; None = the image's Cmd
    env: dict[str, str] = field(default_factory=dict)   # -e, laid over the image's Env
    working_dir: str = ""                   # -w; "" = the image's WorkingDir, else /
    user: str = ""                          # -u USER[:GROUP] / UID[:GID]; "" = the image's User
    mounts: tuple[Mount, ...] = ()
    resources: Resources = Resources()
    ulimits: tuple[Ulimit, ...] = ()
    read_only: bool = False                 # --read-only: the root filesystem is mounted read-only
    security: Security = Security()
    # Lines after localhost's in /etc/hosts ("10.0.0.2\tweb1"), and the whole
    # /etc/resolv.conf ("" = none bound: the image's own, if any).
    hosts_entries: tuple[str, ...] = ()
    resolv_conf: str = ""
    # run -i / -t: the first process's stdin / a pseudo-terminal held by the agent (first_process_io.py).
    open_stdin: bool = False
    tty: bool = False

    def check(self) -> None:
        """Raise ContainerError naming the first field that cannot work."""
        check_container_id(self.id)
        where = f"container {self.name!r}:"
        if not self.name:
            raise ContainerError(f"container {self.id[:12]}: name is empty")
        for what, args in (("entrypoint", self.entrypoint), ("command", self.command)):
            if args is not None and not all(isinstance(a, str) and "\0" not in a for a in args):
                raise ContainerError(f"{where} {what} must be a list of strings, got {args!r}")
        for key, value in self.env.items():
            if not key or "=" in key or "\0" in key or "\0" in value:
                raise ContainerError(f"{where} invalid environment variable {key!r}")
        if not self.hostname or len(self.hostname.encode()) > HOST_NAME_MAX:
            raise ContainerError(f"{where} hostname {self.hostname!r} must be 1 to "
                                 f"{HOST_NAME_MAX} bytes")
        if self.netns_path and not os.path.exists(self.netns_path):
            raise ContainerError(f"{where} network namespace {self.netns_path} does not exist")
        if not self.image.rootfs.is_dir():
            raise ContainerError(f"{where} image {self.image.reference} is not unpacked at "
                                 f"{self.image.rootfs}")
        if self.working_dir and not _is_absolute(self.working_dir):
            raise ContainerError(f"{where} working directory {self.working_dir!r} is not absolute")
        targets: set[PurePosixPath] = set()
        for mount in self.mounts:
            _check_mount(where, mount)
            target = PurePosixPath(mount.target)
            if target in targets:
                raise ContainerError(f"{where} two mounts on target {mount.target}")
            targets.add(target)
        _check_resources(where, self.resources)
        self._check_security(where)

    def _check_security(self, where: str) -> None:
        try:
            self.security.capabilities()
            if self.security.seccomp == SECCOMP_PROFILE:
                check_seccomp_profile(self.security.seccomp_profile)
            elif self.security.seccomp not in (SECCOMP_DEFAULT, SECCOMP_UNCONFINED):
                raise InvalidArgument(f"seccomp {self.security.seccomp!r} is not one of "
                                      f"{SECCOMP_DEFAULT}, {SECCOMP_UNCONFINED}, {SECCOMP_PROFILE}")
        except InvalidArgument as e:
            raise ContainerError(f"{where} {e}") from None
        names = [u.name for u in self.ulimits]
        if len(set(names)) != len(names):
            raise ContainerError(f"{where} a ulimit is given twice: {', '.join(sorted(names))}")


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    state: str           # "created" | "running" | "exited"
    pid: int             # host PID of the container's PID 1 (0 if not running)
    exit_code: int
    started_at: float
    finished_at: float
    error: str = ""
    oom_killed: bool = False   # the kernel's OOM killer ended it (exit code 137)


def check_container_id(container_id: str) -> None:
    # The id becomes a directory and cgroup name: anything but 64 hex chars could escape.
    if not isinstance(container_id, str) or not CONTAINER_ID.match(container_id):
        raise ContainerError(f"invalid container id {container_id!r}: want 64 lowercase hex chars")


def _check_mount(where: str, mount: Mount) -> None:
    what = f"{where} mount {mount.source}:{mount.target}"
    if not _is_absolute(mount.source):
        raise ContainerError(f"{what}: source is not an absolute path")
    if not os.path.exists(mount.source):
        raise ContainerError(f"{what}: source {mount.source} does not exist")
    if not _is_absolute(mount.target):
        raise ContainerError(f"{what}: target is not an absolute path")
    parts = PurePosixPath(mount.target).parts
    if ".." in parts:
        raise ContainerError(f"{what}: target must not contain '..'")
    if len(parts) == 1:
        raise ContainerError(f"{what}: cannot mount over the container's /")


def _check_resources(where: str, res: Resources) -> None:
    if isinstance(res.memory_bytes, bool) or not isinstance(res.memory_bytes, int) \
            or res.memory_bytes < 0:
        raise ContainerError(f"{where} memory limit {res.memory_bytes!r} must be an int >= 0")
    if 0 < res.memory_bytes < MIN_MEMORY_BYTES:
        raise ContainerError(f"{where} memory limit {res.memory_bytes} bytes is below the minimum "
                             f"of {MIN_MEMORY_BYTES} bytes (6 MiB)")
    if isinstance(res.cpus, bool) or not isinstance(res.cpus, (int, float)) \
            or not math.isfinite(res.cpus) or res.cpus < 0:
        raise ContainerError(f"{where} cpus {res.cpus!r} must be a number >= 0")
    available = os.cpu_count() or 1
    if res.cpus and not MIN_CPUS <= res.cpus <= available:
        raise ContainerError(f"{where} cpus {res.cpus} must be between {MIN_CPUS} and the "
                             f"{available} CPUs of this host")
    if isinstance(res.pids_limit, bool) or not isinstance(res.pids_limit, int) \
            or res.pids_limit < 0:
        raise ContainerError(f"{where} pids limit {res.pids_limit!r} must be an int >= 0")


def _is_absolute(path: str) -> bool:
    return isinstance(path, str) and path.startswith("/") and "\0" not in path


def _bounding_set() -> list[str]:
    """The capabilities this process may pass on (what --privileged grants): its bounding set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return capabilities.from_mask(int(line.split()[1], 16))
    return list(capabilities.BITS)
