"""What /proc says about a host process, keyed by (pid, start time).

A PID alone can be reused after its process dies; the start time (field 22
of /proc/PID/stat, clock ticks since boot) can not repeat for one PID, so the
pair names exactly one process for the life of the host.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    start_time: int


@dataclass(frozen=True)
class ProcStat:
    state: str          # field 3: R, S, D, Z, X, ...
    start_time: int     # field 22


def read_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Field 2 is "(comm)" and comm may hold spaces and ')': split after the last ')'.
    rest = raw[raw.rindex(b")") + 2:].split()
    return ProcStat(state=rest[0].decode(), start_time=int(rest[19]))


def identify(pid: int) -> ProcessIdentity | None:
    stat = read_stat(pid)
    return None if stat is None else ProcessIdentity(pid, stat.start_time)


def is_alive(who: ProcessIdentity) -> bool:
    """True while that very process exists and has not exited.

    An exited process nobody has reaped yet stays in /proc as a zombie; it is
    not running anything, so it counts as gone.
    """
    stat = read_stat(who.pid)
    return stat is not None and stat.start_time == who.start_time and stat.state not in ("Z", "X")
