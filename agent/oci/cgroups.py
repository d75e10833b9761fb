"""The host's cgroup layout, as crun will see it, and the removal of what crun leaves behind.

crun creates a container's cgroup as `<parent>/<id>` in every hierarchy
(cgroupfs manager; the parent is one per agent, so several agents share a
machine and each finds its own orphans) and removes it on `crun delete`.
It leaves the parent, and a crash may leave a container's cgroup: both are
cleaned here.

Hybrid hosts (cgroup v1 hierarchies plus a cgroup2 tree at
/sys/fs/cgroup/unified) are fine for crun as long as no controller sits
on the cgroup2 side; when one does (some kernels put hugetlb there),
crun refuses to create containers, and the monitor hides that controller
list from crun in a private mount namespace (monitor.py) — the v1
hierarchies still do all the limiting.

Plain synchronous I/O: the runtime calls it in a thread.
"""
from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.oci.model import CONTAINER_ID, ContainerError

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNIFIED = "unified"
HYBRID = "hybrid"
LEGACY = "legacy"
# After SIGKILL the kernel needs a moment before the cgroup is empty.
EMPTY_TIMEOUT = 5.0


@dataclass(frozen=True)
class HostCgroups:
    mode: str                         # unified | hybrid | legacy
    hierarchies: tuple[Path, ...]     # every mounted cgroup and cgroup2 hierarchy
    hide_v2_controllers: bool         # hybrid with controllers on cgroup2: crun needs them hidden
    swap_limit: bool                  # memory+swap can be limited

    @classmethod
    def detect(cls, mountinfo: str | None = None, root: Path = CGROUP_ROOT) -> HostCgroups:
        if mountinfo is None:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        mounts = _cgroup_mounts(mountinfo)
        if mounts.get(root) == "cgroup2":
            mode = UNIFIED
        elif mounts.get(root / "unified") == "cgroup2":
            mode = HYBRID
        else:
            mode = LEGACY
        hide = mode == HYBRID and bool(_read(root / "unified" / "cgroup.controllers").split())
        if mode == UNIFIED:
            swap = _own_v2_swap_file(root)
        else:
            swap = (root / "memory" / "memory.memsw.limit_in_bytes").exists()
        hierarchies = tuple(sorted(p for p in mounts if p == root or root in p.parents))
        return cls(mode, hierarchies, hide, swap)

    def container_dirs(self, parent: str, container_id: str) -> list[Path]:
        return [h / parent / container_id for h in self.hierarchies
                if (h / parent / container_id).is_dir()]

    def container_ids(self, parent: str) -> set[str]:
        """Ids with a cgroup under `parent` in some hierarchy."""
        found = set()
        for hierarchy in self.hierarchies:
            try:
                found.update(e.name for e in (hierarchy / parent).iterdir()
                             if CONTAINER_ID.match(e.name) and e.is_dir())
            except FileNotFoundError:
                pass
        return found

    def remove(self, parent: str, container_id: str) -> None:
        """Kill whatever is left in the container's cgroups and delete them."""
        deadline = time.monotonic() + EMPTY_TIMEOUT
        remaining = self.container_dirs(parent, container_id)
        while remaining:
            for group in remaining:
                for pid in _pids(group):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            remaining = [g for g in remaining if not _rmdir(g, time.monotonic() > deadline)]
            if remaining:
                time.sleep(0.02)

    def remove_parent_if_empty(self, parent: str) -> None:
        for hierarchy in self.hierarchies:
            level = hierarchy / parent
            for _ in PurePosixPath(parent).parts:
                try:
                    level.rmdir()
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EBUSY, errno.EEXIST, errno.ENOENT):
                        break  # in use (or gone): leave it and its ancestors
                    raise ContainerError(f"cannot remove cgroup {level}: {e.strerror}") from e
                level = level.parent


def _cgroup_mounts(mountinfo: str) -> dict[Path, str]:
    """Mount point -> "cgroup" | "cgroup2", from /proc/self/mountinfo."""
    mounts = {}
    for line in mountinfo.splitlines():
        before, sep, after = line.partition(" - ")
        fields, fs = before.split(), after.split()
        if sep and len(fields) >= 5 and fs and fs[0] in ("cgroup", "cgroup2"):
            mounts[Path(fields[4].replace("\\040", " "))] = fs[0]
    return mounts


def _own_v2_swap_file(root: Path) -> bool:
    """Whether this process's cgroup2 has memory.swap.max (swap accounting on)."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        if line.startswith("0::"):
            own = root / line[3:].lstrip("/")
            return own == root or (own / "memory.swap.max").exists()
    return True


def _pids(group: Path) -> list[int]:
    return [int(p) for p in _read(group / "cgroup.procs").split()]


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
        raise ContainerError(f"cannot remove cgroup {group}: {e.strerror}") from e


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""
