"""One container's directory: its bundle, its writable layer, its monitor's files, its records.

Layout of `<runtime root>/containers/<id>/`:
  record.json       Record: name, image and stop signal, written at start
  bundle/           the OCI bundle: config.json, rootfs/ (the overlay's mount point)
  upper/ work/      the container's writable layer (overlayfs upper and work dirs)
  etc/              hostname and hosts, bound into the container
  container.log     the command's stdout and stderr, only ever appended to
  monitor/          conmon's files: exit (the exit code), oom (OOM killed),
                    conmon.pid, container.pid, crun.log, launch.err
  launched.json     Launched: PIDs and start times of the command and its monitor
  start-error.json  StartFailure: why the last start failed
  exec/             process.json and pid files of running execs
Everything goes with the directory on remove. JSON records are written whole
via rename, so a reader never sees half a file. Plain synchronous I/O.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.oci.model import ContainerError
from proto.private_files import private_dir, write_private

T = TypeVar("T")


@dataclass(frozen=True)
class Record:
    id: str
    name: str
    image: str        # canonical reference
    image_id: str
    stop_signal: str  # the image's StopSignal ("" = SIGTERM), for `stop`


@dataclass(frozen=True)
class Launched:
    pid: int                  # host PID of the container's first process
    start_time: int           # field 22 of /proc/PID/stat: tells a reused PID apart
    started_at: float
    monitor_pid: int          # conmon
    monitor_start_time: int


@dataclass(frozen=True)
class StartFailure:
    error: str
    exit_code: int            # 127 command not found, 126 not runnable, 125 anything else
    failed_at: float


class ContainerDir:
    def __init__(self, path: Path):
        self.path = path
        self.bundle = path / "bundle"
        self.rootfs = self.bundle / "rootfs"
        self.upper = path / "upper"
        self.work = path / "work"
        self.etc = path / "etc"
        self.log_file = path / "container.log"
        self.monitor = path / "monitor"
        self.exit_file = self.monitor / "exit"
        self.oom_file = self.monitor / "oom"
        self.monitor_pid_file = self.monitor / "conmon.pid"
        self.pid_file = self.monitor / "container.pid"
        self.crun_log = self.monitor / "crun.log"
        self.launch_errors = self.monitor / "launch.err"
        self.exec_dir = path / "exec"
        self._record = path / "record.json"
        self._launched = path / "launched.json"
        self._start_failure = path / "start-error.json"

    def exists(self) -> bool:
        return self.path.is_dir()

    def prepare(self) -> None:
        """Make the directories a start needs; forget the previous run (the log and layer stay)."""
        # Root's alone (proto/private_files.py): the bundle's config and the exec
        # sessions hold the container's environment, the directory its log.
        for directory in (self.path, self.bundle, self.exec_dir):
            private_dir(directory)
        # The container's own filesystem: 0755 where its processes must pass (its
        # root and the files bound into it), reachable only through the 0700 above.
        for directory in (self.rootfs, self.upper, self.work, self.etc):
            directory.mkdir(mode=0o700, exist_ok=True)
        for directory in (self.rootfs, self.upper, self.etc):
            directory.chmod(0o755)
        shutil.rmtree(self.monitor, ignore_errors=True)
        private_dir(self.monitor)
        for record in (self._launched, self._start_failure):
            record.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self.path.exists():
            raise ContainerError(f"cannot remove {self.path}: something in it is still busy")

    def write_record(self, record: Record) -> None:
        _write_json(self._record, dataclasses.asdict(record))

    def read_record(self) -> Record | None:
        return _read_record(self._record, Record)

    def write_launched(self, launched: Launched) -> None:
        _write_json(self._launched, dataclasses.asdict(launched))

    def read_launched(self) -> Launched | None:
        return _read_record(self._launched, Launched)

    def write_start_failure(self, failure: StartFailure) -> None:
        _write_json(self._start_failure, dataclasses.asdict(failure))

    def read_start_failure(self) -> StartFailure | None:
        return _read_record(self._start_failure, StartFailure)

    def read_exit(self) -> tuple[int, float] | None:
        """conmon's record of the exit: (code, when), or None while there is none."""
        try:
            text = self.exit_file.read_text().strip()
            finished_at = self.exit_file.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            return int(text), finished_at
        except ValueError:
            raise ContainerError(f"corrupt exit file {self.exit_file}: {text[:40]!r}") from None

    def write_exit_if_missing(self, code: int) -> None:
        """Record an exit conmon could not (it died first), unless it did after all."""
        self.monitor.mkdir(mode=0o700, exist_ok=True)
        tmp = self.monitor / f".exit.{secrets.token_hex(8)}.tmp"
        tmp.write_text(str(code))
        try:
            os.link(tmp, self.exit_file)  # fails if conmon's record is there
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    def oom_killed(self) -> bool:
        return self.oom_file.exists()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data, sort_keys=True))


def _read_record(path: Path, cls: type[T]) -> T | None:
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = json.loads(raw)
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
    except (ValueError, KeyError, TypeError) as e:
        raise ContainerError(f"corrupt state file {path}: {e!r}") from None
