"""Signal and await a process that is not our child, without polling.

Container PID 1s are children of whatever reaped the shim, never of the agent,
so waitpid() cannot be used. A pidfd becomes readable when its process exits
and, once opened, keeps naming that process even if the PID is reused.
"""
from __future__ import annotations

import asyncio
import os
import signal

from agent.runtime.procfs import ProcessIdentity, is_alive


class ProcessHandle:
    def __init__(self, fd: int, who: ProcessIdentity):
        self._fd = fd
        self.who = who

    @classmethod
    def open(cls, who: ProcessIdentity) -> ProcessHandle | None:
        """A handle on `who`, or None if it has already exited."""
        try:
            fd = os.pidfd_open(who.pid)
        except ProcessLookupError:
            return None
        # The PID might have been reused before pidfd_open; checking after the
        # open means the fd we keep is known to point at the right process.
        if not is_alive(who):
            os.close(fd)
            return None
        return cls(fd, who)

    def send_signal(self, signum: int) -> None:
        try:
            signal.pidfd_send_signal(self._fd, signum)
        except ProcessLookupError:
            pass  # exited meanwhile: the signal has nothing left to do

    async def wait(self, timeout: float | None) -> bool:
        """True once the process has exited, False if `timeout` seconds pass first."""
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(self._fd, on_readable)
        try:
            await asyncio.wait_for(exited, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ProcessHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
