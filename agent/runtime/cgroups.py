"""One cgroup per container: every process accounted, and --memory/--cpus/--pids-limit.

Layout: `<hierarchy>/<parent>/<container id>`, where the hierarchies are
  cgroup v2 (/sys/fs/cgroup is a cgroup2 mount): /sys/fs/cgroup itself;
  cgroup v1: one per controller, /sys/fs/cgroup/{memory,cpu,pids}.
The parent (one per agent) keeps several agents on one machine apart and lets
the agent find containers it no longer knows (orphans) after a restart.

The filesystem root is a parameter so the file writes can be tested against
a plain directory tree. Plain synchronous I/O: the agent runs it in a thread;
the shim and exec use `join` from the process that must be moved.
"""
from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from agent import linux
from agent.runtime.model import CONTAINER_ID, Resources

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP2_SUPER_MAGIC = 0x63677270
CONTROLLERS = ("memory", "cpu", "pids")
PERIOD_US = 100_000
# PID 1's exit already killed the pid namespace; this only covers stragglers
# outside it (an exec's nsenter) that need a moment to die.
EMPTY_TIMEOUT = 5.0


class CgroupError(Exception):
    """A cgroup could not be created, limited, joined or removed; the message says which file."""


class Cgroups:
    def __init__(self, parent: str, version: int, fs_root: Path = CGROUP_ROOT):
        if any(part in ("", ".", "..") for part in parent.split("/")):
            raise CgroupError(f"cgroup parent {parent!r} must be a relative path without '..'")
        if version not in (1, 2):
            raise CgroupError(f"unknown cgroup version {version}")
        self.parent = parent
        self.version = version
        self.fs_root = Path(fs_root)

    @classmethod
    def detect(cls, parent: str, fs_root: Path = CGROUP_ROOT) -> Cgroups:
        """v2 if `fs_root` is a cgroup2 mount, else v1 (hybrid systems: v1 does the limiting)."""
        try:
            unified = linux.statfs_type(str(fs_root)) == CGROUP2_SUPER_MAGIC
        except OSError:
            unified = False  # no cgroupfs at all: create() will say what is missing
        return cls(parent, 2 if unified else 1, fs_root)

    # -- paths -------------------------------------------------------------------

    def _hierarchies(self) -> list[Path]:
        if self.version == 2:
            return [self.fs_root]
        return [self.fs_root / c for c in CONTROLLERS]

    def parent_dirs(self) -> list[Path]:
        return [h / self.parent for h in self._hierarchies()]

    def dirs(self, container_id: str) -> list[Path]:
        return [p / container_id for p in self.parent_dirs()]

    def procs_files(self, container_id: str) -> list[Path]:
        """Where a pid goes to move that process into the container's cgroup(s)."""
        return [d / "cgroup.procs" for d in self.dirs(container_id)]

    def exists(self, container_id: str) -> bool:
        return all(d.is_dir() for d in self.dirs(container_id))

    # -- lifecycle ---------------------------------------------------------------

    def create(self, container_id: str, resources: Resources) -> None:
        """Create (or reuse) the container's cgroup and set its limits; unset ones to unlimited."""
        if self.version == 2:
            self._create_v2(container_id, resources)
        else:
            self._create_v1(container_id, resources)

    def _create_v1(self, container_id: str, res: Resources) -> None:
        for hierarchy in self._hierarchies():
            # Else mkdir would happily build a look-alike tree on the tmpfs
            # /sys/fs/cgroup, and the limits would be plain files.
            if not hierarchy.is_dir():
                raise CgroupError(f"no cgroup v1 hierarchy for the {hierarchy.name} "
                                  f"controller at {hierarchy}")
        memory, cpu, pids = (_mkdir(d) for d in self.dirs(container_id))
        limit = str(res.memory_bytes) if res.memory_bytes else "-1"
        memsw = memory / "memory.memsw.limit_in_bytes"  # absent when swap accounting is off
        # memsw may never be below the memory limit: lift it first, then lower
        # both, so any old -> new pair of values is accepted.
        if memsw.exists():
            _write(memsw, "-1")
        _write(memory / "memory.limit_in_bytes", limit)
        if memsw.exists():
            _write(memsw, limit)  # memory+swap = memory: swapping cannot dodge the limit
        _write(cpu / "cpu.cfs_period_us", str(PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", str(_quota(res)) if res.cpus else "-1")
        _write(pids / "pids.max", str(res.pids_limit) if res.pids_limit else "max")

    def _create_v2(self, container_id: str, res: Resources) -> None:
        # A controller reaches a cgroup only if every ancestor lists it in
        # cgroup.subtree_control, so enable it at each level on the way down.
        level = self.fs_root
        for part in PurePosixPath(self.parent).parts:
            _enable_controllers(level)
            level = _mkdir(level / part)
        _enable_controllers(level)
        group = _mkdir(level / container_id)
        _write(group / "memory.max", str(res.memory_bytes) if res.memory_bytes else "max")
        swap = group / "memory.swap.max"  # absent without swap accounting
        if swap.exists():
            _write(swap, "0" if res.memory_bytes else "max")
        quota = str(_quota(res)) if res.cpus else "max"
        _write(group / "cpu.max", f"{quota} {PERIOD_US}")
        _write(group / "pids.max", str(res.pids_limit) if res.pids_limit else "max")

    def pids(self, container_id: str) -> list[int]:
        """Host PIDs of the processes in the container's cgroup(s)."""
        found: set[int] = set()
        for procs in self.procs_files(container_id):
            try:
                found.update(int(p) for p in procs.read_text().split())
            except FileNotFoundError:
                pass
        return sorted(found)

    def remove(self, container_id: str) -> None:
        """Kill what is left in the container's cgroup, delete it, then the parent if empty."""
        deadline = time.monotonic() + EMPTY_TIMEOUT
        remaining = self.dirs(container_id)
        while True:
            # Killed again on every round: a straggler may have forked meanwhile.
            for pid in self.pids(container_id):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            remaining = [g for g in remaining if not _rmdir(g, time.monotonic() > deadline)]
            if not remaining:
                break
            time.sleep(0.01)
        self._remove_empty_parents()

    def orphans(self, known_ids: Iterable[str]) -> list[str]:
        """Remove the cgroups of containers not in `known_ids`; return their ids."""
        known = set(known_ids)
        found: set[str] = set()
        for parent in self.parent_dirs():
            try:
                found.update(e.name for e in parent.iterdir()
                             if CONTAINER_ID.match(e.name) and e.is_dir())
            except FileNotFoundError:
                pass
        removed, failures = [], []
        for container_id in sorted(found - known):
            try:
                self.remove(container_id)
                removed.append(container_id)
            except CgroupError as e:
                failures.append(str(e))  # keep going: one stuck cgroup must not shield the rest
        self._remove_empty_parents()
        if failures:
            raise CgroupError("; ".join(failures))
        return removed

    def _remove_empty_parents(self) -> None:
        for parent in self.parent_dirs():
            level = parent
            for _ in PurePosixPath(self.parent).parts:
                try:
                    level.rmdir()
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EBUSY, errno.EEXIST, errno.ENOENT):
                        break  # still in use (or already gone): leave it and its ancestors
                    raise CgroupError(f"cannot remove cgroup {level}: {e.strerror}") from e
                level = level.parent


def join(procs_files: Iterable[Path | str], pid: int = 0) -> None:
    """Move `pid` (0: the caller) into a cgroup; its children inherit it."""
    for procs in procs_files:
        _write(Path(procs), str(pid))


def _quota(res: Resources) -> int:
    return round(res.cpus * PERIOD_US)


def _enable_controllers(group: Path) -> None:
    available_file = group / "cgroup.controllers"
    control = group / "cgroup.subtree_control"
    wanted = list(CONTROLLERS)
    if available_file.exists():
        available = available_file.read_text().split()
        missing = [c for c in wanted if c not in available]
        if missing:
            raise CgroupError(f"cgroup {group} lacks the {', '.join(missing)} controller(s)")
    enabled = control.read_text().split() if control.exists() else []
    if all(c in enabled for c in wanted):
        return  # already on: no write, which a delegated tree might not allow
    _write(control, " ".join(f"+{c}" for c in wanted))


def _mkdir(path: Path) -> Path:
    # A concurrent remove may rmdir an empty parent between our mkdirs: retry.
    for _ in range(3):
        try:
            path.mkdir(parents=True, exist_ok=True)
            return path
        except FileNotFoundError:
            continue
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {path}: {e.strerror}") from e
    raise CgroupError(f"cannot create cgroup {path}: its parent keeps disappearing")


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise CgroupError(f"cannot write {value!r} to {path}: {e.strerror}") from e


def _rmdir(group: Path, give_up: bool) -> bool:
    """True once `group` is gone; False while it still holds dying processes."""
    try:
        group.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError as e:
        if e.errno == errno.EBUSY and not give_up:
            return False
        raise CgroupError(f"cannot remove cgroup {group}: {e.strerror}") from e
