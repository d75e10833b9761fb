"""The runtime's own types: what to run, what was observed, what went wrong.

They live apart from `containers.py` so the shim (a separate, short-lived
process) can read a config without importing asyncio and the Runtime.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agent import linux
from proto.records import Mount

CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")

# What a command sees when its config sets no PATH (Docker's default), so
# that PATH lookup does not depend on whatever environment the agent had.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
    memory_bytes: int = 0   # --memory
    cpus: float = 0.0       # --cpus: 1.5 = 150 ms of CPU time per 100 ms period
    pids_limit: int = 0     # --pids-limit

    def to_dict(self) -> dict:
        return {"memory_bytes": self.memory_bytes, "cpus": self.cpus,
                "pids_limit": self.pids_limit}

    @classmethod
    def from_dict(cls, data: dict) -> Resources:
        return cls(memory_bytes=int(data.get("memory_bytes", 0)),
                   cpus=float(data.get("cpus", 0.0)),
                   pids_limit=int(data.get("pids_limit", 0)))


@dataclass(frozen=True)
class ContainerConfig:
    id: str              # 64 hex chars
    name: str
    command: list[str]
    env: dict[str, str]
    hostname: str
    # /run/netns/<name> (must exist), another container's namespace to share
    # it, or "" to stay in the namespace the agent runs in (--network host).
    netns_path: str
    rootfs: str = ""     # "" = the container sees the host's filesystem
    mounts: tuple[Mount, ...] = ()
    resources: Resources = Resources()

    def check(self) -> None:
        """Raise ContainerError naming the first field that cannot work."""
        check_container_id(self.id)
        if not self.name:
            raise ContainerError(f"container {self.id[:12]}: name is empty")
        if not self.command or not all(isinstance(a, str) for a in self.command):
            raise ContainerError(
                f"container {self.name!r}: command must be a non-empty list of strings, "
                f"got {self.command!r}")
        if not self.command[0]:
            raise ContainerError(f"container {self.name!r}: command[0] is empty")
        for key, value in self.env.items():
            if not key or "=" in key or "\0" in key or "\0" in value:
                raise ContainerError(
                    f"container {self.name!r}: invalid environment variable {key!r}")
        if not self.hostname or len(self.hostname.encode()) > linux.HOST_NAME_MAX:
            raise ContainerError(
                f"container {self.name!r}: hostname {self.hostname!r} must be 1 to "
                f"{linux.HOST_NAME_MAX} bytes")
        if self.netns_path and not Path(self.netns_path).exists():
            raise ContainerError(
                f"container {self.name!r}: network namespace {self.netns_path} does not exist")
        if self.rootfs:
            if not _is_absolute(self.rootfs):
                raise ContainerError(
                    f"container {self.name!r}: rootfs {self.rootfs} is not an absolute path")
            if not Path(self.rootfs).is_dir():
                raise ContainerError(
                    f"container {self.name!r}: rootfs {self.rootfs} is not a directory")
        targets: set[PurePosixPath] = set()
        for mount in self.mounts:
            self._check_mount(mount)
            target = PurePosixPath(mount.target)
            if target in targets:
                raise ContainerError(
                    f"container {self.name!r}: two mounts on target {mount.target}")
            targets.add(target)
        self._check_resources()

    def _check_mount(self, mount: Mount) -> None:
        where = f"container {self.name!r}: mount {mount.source}:{mount.target}"
        if not _is_absolute(mount.source):
            raise ContainerError(f"{where}: source is not an absolute path")
        if not os.path.exists(mount.source):
            raise ContainerError(f"{where}: source {mount.source} does not exist")
        if not _is_absolute(mount.target):
            raise ContainerError(f"{where}: target is not an absolute path")
        parts = PurePosixPath(mount.target).parts
        if ".." in parts:
            raise ContainerError(f"{where}: target must not contain '..'")
        if len(parts) == 1:
            raise ContainerError(f"{where}: cannot mount over the container's /")

    def _check_resources(self) -> None:
        res = self.resources
        where = f"container {self.name!r}:"
        if isinstance(res.memory_bytes, bool) or not isinstance(res.memory_bytes, int) \
                or res.memory_bytes < 0:
            raise ContainerError(f"{where} memory limit {res.memory_bytes!r} must be an int >= 0")
        if 0 < res.memory_bytes < MIN_MEMORY_BYTES:
            raise ContainerError(
                f"{where} memory limit {res.memory_bytes} bytes is below the minimum of "
                f"{MIN_MEMORY_BYTES} bytes (6 MiB)")
        if isinstance(res.cpus, bool) or not isinstance(res.cpus, (int, float)) \
                or not math.isfinite(res.cpus) or res.cpus < 0:
            raise ContainerError(f"{where} cpus {res.cpus!r} must be a number >= 0")
        available = os.cpu_count() or 1
        if res.cpus and not MIN_CPUS <= res.cpus <= available:
            raise ContainerError(
                f"{where} cpus {res.cpus} must be between {MIN_CPUS} and the "
                f"{available} CPUs of this host")
        if isinstance(res.pids_limit, bool) or not isinstance(res.pids_limit, int) \
                or res.pids_limit < 0:
            raise ContainerError(f"{where} pids limit {res.pids_limit!r} must be an int >= 0")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "command": list(self.command),
            "env": dict(self.env),
            "hostname": self.hostname,
            "netns_path": self.netns_path,
            "rootfs": self.rootfs,
            "mounts": [m.to_dict() for m in self.mounts],
            "resources": self.resources.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ContainerConfig:
        # .get with defaults: config.json files written before a key existed still load.
        return cls(
            id=data["id"],
            name=data["name"],
            command=list(data["command"]),
            env=dict(data["env"]),
            hostname=data["hostname"],
            netns_path=data["netns_path"],
            rootfs=data.get("rootfs", ""),
            mounts=tuple(Mount.from_dict(m) for m in data.get("mounts", ())),
            resources=Resources.from_dict(data.get("resources", {})),
        )


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    state: str           # "created" | "running" | "exited"
    pid: int             # host PID of the container's PID 1 (0 if not running)
    exit_code: int
    started_at: float
    finished_at: float
    error: str = field(default="")


def check_container_id(container_id: str) -> None:
    # The id becomes a directory name: anything but 64 hex chars could escape the root.
    if not isinstance(container_id, str) or not CONTAINER_ID.match(container_id):
        raise ContainerError(f"invalid container id {container_id!r}: want 64 lowercase hex chars")


def command_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment a container's processes get: `env`, plus PATH if it has none."""
    return {"PATH": DEFAULT_PATH, **env}


def _is_absolute(path: str) -> bool:
    return isinstance(path, str) and path.startswith("/") and "\0" not in path
