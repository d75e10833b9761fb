"""One container's state directory: the only channel between agent, shim and init.

Files (all written whole via rename, so a reader never sees half a file):
  config.json       the ContainerConfig, written by the agent before launch
  pid.json          Launched: host PID + start time of the container's PID 1,
                    written by the shim once the command has been exec'd
  exit.json         Exited: written by PID 1 just before it exits, or by the
                    agent when it finds PID 1 gone without one (SIGKILL)
  start-error.json  StartFailure: written by the shim when the command could
                    not be started
  container.log     the command's stdout+stderr, only ever appended to
  shim.log          the shim's own stderr (tracebacks), truncated per start
Every file here holds the container's configuration (its environment, often
secrets) or its output, so the directory is 0700 and every file 0600
(proto/private_files.py). Plain synchronous I/O: callers in the agent run it
in a thread.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.runtime.model import ContainerConfig, ContainerError
from proto.private_files import private_dir, write_private

T = TypeVar("T")


@dataclass(frozen=True)
class Launched:
    pid: int            # host PID of the container's PID 1
    start_time: int     # field 22 of /proc/PID/stat, tells a reused PID apart
    started_at: float


@dataclass(frozen=True)
class Exited:
    exit_code: int      # 128+N when the command died of signal N
    finished_at: float


@dataclass(frozen=True)
class StartFailure:
    error: str
    exit_code: int      # 127 command not found, 126 found but not runnable
    failed_at: float


class StateDir:
    def __init__(self, path: Path):
        self.path = path
        self.config_file = path / "config.json"
        self.launched_file = path / "pid.json"
        self.exited_file = path / "exit.json"
        self.start_failure_file = path / "start-error.json"
        self.log_file = path / "container.log"
        self.shim_log_file = path / "shim.log"

    def create(self) -> None:
        private_dir(self.path)

    def exists(self) -> bool:
        return self.path.is_dir()

    def write_config(self, config: ContainerConfig) -> None:
        _write_json(self.config_file, config.to_dict())

    def read_config(self) -> ContainerConfig | None:
        data = _read_json(self.config_file)
        if data is None:
            return None
        try:
            return ContainerConfig.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise ContainerError(f"corrupt state file {self.config_file}: {e!r}") from e

    def write_launched(self, record: Launched) -> None:
        _write_json(self.launched_file, dataclasses.asdict(record))

    def read_launched(self) -> Launched | None:
        return _read_record(self.launched_file, Launched)

    def write_exited(self, record: Exited) -> None:
        _write_json(self.exited_file, dataclasses.asdict(record))

    def write_exited_at(self, dir_fd: int, record: Exited) -> None:
        """write_exited through an open fd of this directory.

        For PID 1 of a container with its own root: after pivot_root the
        state directory's path leads nowhere, but an fd opened before still does.
        """
        _write_json(Path(self.exited_file.name), dataclasses.asdict(record), dir_fd)

    def read_exited(self) -> Exited | None:
        return _read_record(self.exited_file, Exited)

    def write_start_failure(self, record: StartFailure) -> None:
        _write_json(self.start_failure_file, dataclasses.asdict(record))

    def read_start_failure(self) -> StartFailure | None:
        return _read_record(self.start_failure_file, StartFailure)

    def forget_last_run(self) -> None:
        """Drop the records of a previous run; the log is kept (runs append)."""
        for f in (self.launched_file, self.exited_file, self.start_failure_file):
            f.unlink(missing_ok=True)


def _write_json(path: Path, data: dict[str, Any], dir_fd: int | None = None) -> None:
    """Write `path` whole via rename; with `dir_fd`, `path` is relative to that directory."""
    write_private(path, json.dumps(data, sort_keys=True), dir_fd=dir_fd)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise ContainerError(f"corrupt state file {path}: {e}") from e
    if not isinstance(data, dict):
        raise ContainerError(f"corrupt state file {path}: not a JSON object")
    return data


def _read_record(path: Path, cls: type[T]) -> T | None:
    data = _read_json(path)
    if data is None:
        return None
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    try:
        return cls(**{name: data[name] for name in names})
    except KeyError as e:
        raise ContainerError(f"corrupt state file {path}: missing {e}") from e
