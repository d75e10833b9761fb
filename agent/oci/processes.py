"""Telling whether a recorded process still runs, and waiting for it to end, by pidfd.

A PID alone may have been reused since it was recorded, so every check
compares the kernel's start time of the process (field 22 of /proc/PID/stat)
with the recorded one.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import select
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks, or None if it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(pid: int, started: int) -> bool:
    return pid > 0 and start_time(pid) == started


async def wait_gone(pid: int, started: int, timeout: float | None = None) -> bool:
    """Wait until the process ends; False if it still runs after `timeout` seconds."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        # Checked after opening the pidfd: the fd now pins this very process.
        if start_time(pid) != started:
            return True
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_reader(pidfd, lambda: done.done() or done.set_result(None))
        try:
            await asyncio.wait_for(done, timeout)
            return True
        except TimeoutError:
            return _readable(pidfd)  # it may have ended at the last moment
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)


def _readable(fd: int) -> bool:
    """A pidfd polls readable once its process has ended."""
    with contextlib.suppress(OSError):
        return bool(select.select([fd], [], [], 0)[0])
    return True
