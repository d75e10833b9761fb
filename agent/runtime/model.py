"""The runtime's own types: what to run, what was observed, what went wrong.

They live apart from `containers.py` so the shim (a separate, short-lived
process) can read a config without importing asyncio and the Runtime.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from agent import linux

CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")

# What a command sees when its config sets no PATH (Docker's default), so
# that PATH lookup does not depend on whatever environment the agent had.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CREATED = "created"
RUNNING = "running"
EXITED = "exited"


class ContainerError(Exception):
    """A container operation failed; the message names the container and the cause."""


@dataclass(frozen=True)
class ContainerConfig:
    id: str              # 64 hex chars
    name: str
    command: list[str]
    env: dict[str, str]
    hostname: str
    netns_path: str      # /run/netns/<name>, must exist

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
        if not Path(self.netns_path).exists():
            raise ContainerError(
                f"container {self.name!r}: network namespace {self.netns_path} does not exist")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "command": list(self.command),
            "env": dict(self.env),
            "hostname": self.hostname,
            "netns_path": self.netns_path,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ContainerConfig:
        return cls(
            id=data["id"],
            name=data["name"],
            command=list(data["command"]),
            env=dict(data["env"]),
            hostname=data["hostname"],
            netns_path=data["netns_path"],
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
