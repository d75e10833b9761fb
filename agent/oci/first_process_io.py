"""`run -i` / `run -t`: a container's first process with a stdin or a terminal its agent holds.

What exec_attached.py gives a command `exec` starts, given to the command
the container itself runs. With `tty`, the process is created with an OCI
terminal (process.terminal): crun makes the pseudo-terminal in the
container, makes it the process's controlling terminal and hands its master
over the console socket the agent listens on (conmon passes the socket to
`crun create`; its own passthrough stdio refuses a terminal). What the
master reads is appended to the container's log, which `logs` and a
foreground `run` read as any container's. Without `tty`, stdin is a pipe
(conmon's stdin, passed through) and stdout and stderr go to the log as
usual. An attached stream (ExecRequest.first_process) feeds the pipe or the
master with exec's own `feed` as long as the container runs, and resizes
the terminal.

The agent's ends live in this process: an agent restart ends the input
(end of file on the pipe, a hang-up on the terminal), as a Docker daemon's
restart ends its attached containers' input.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

from agent.oci.exec_attached import Input, feed, set_size
from agent.oci.exec_session import READ_SIZE
from agent.oci.model import ContainerError

# How long `logs` waits for the terminal's last output to reach the log after the container exited.
DRAIN_SECONDS = 2.0
# How long crun may take to hand the terminal over once conmon runs it.
CONSOLE_WAIT = 60.0


class FirstProcessIO:
    def __init__(self, tty: bool, log_file: Path, console_socket: Path) -> None:
        self.tty = tty
        self.log_file = log_file
        self.console_socket = console_socket
        self.drained = asyncio.Event()      # the terminal's output is all in the log
        self.child_stdin: int | None = None
        self._child: list[int] = []
        self._listener: socket.socket | None = None
        self.opened: list[int] = []         # the agent's end, until the input ends or the container is gone
        self.input = -1
        if tty:
            console_socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            console_socket.unlink(missing_ok=True)
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            self._listener.bind(str(console_socket))
            self._listener.listen(1)
            self._listener.settimeout(CONSOLE_WAIT)
        else:
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            self.input = write_end
            self.opened = [write_end]
            self._child = [read_end]
            self.child_stdin = read_end
            self.drained.set()

    @property
    def runtime_options(self) -> list[str]:
        """What `crun create` is given: where to send the terminal's master."""
        return [f"--console-socket={self.console_socket}"] if self.tty else []

    async def receive(self) -> None:
        """The terminal's master from crun (run beside the container's creation)."""
        if self._listener is not None:
            self.input = await asyncio.to_thread(self._receive)
            self.opened = [self.input]

    def _receive(self) -> int:
        assert self._listener is not None
        try:
            connection, _ = self._listener.accept()
            with connection:
                connection.settimeout(CONSOLE_WAIT)
                _, fds, _, _ = socket.recv_fds(connection, 4096, 1)
        except OSError as err:
            raise ContainerError(f"the container's terminal was not handed over: {err}") from None
        finally:
            self._close_listener()
        if not fds:
            raise ContainerError("the container's terminal was not handed over")
        os.set_blocking(fds[0], False)
        return fds[0]

    def started(self) -> None:
        """The first process holds its ends now: ours go, and the terminal's output is copied."""
        for fd in self._child:
            os.close(fd)
        self._child = []
        if self.tty and self.input >= 0:
            asyncio.get_running_loop().add_reader(self.input, self._copy)

    async def feed(self, inputs: asyncio.Queue[Input], size: tuple[int, int]) -> None:
        if self.input not in self.opened:
            return
        if self.tty:
            set_size(self.input, *size)
        await feed(inputs, self.input, self.tty, self.opened)

    def close(self) -> None:
        self._close_listener()
        for fd in self._child + self.opened:
            if self.tty and fd == self.input:
                with contextlib.suppress(ValueError, RuntimeError):
                    asyncio.get_running_loop().remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._child, self.opened = [], []
        self.drained.set()

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)   # wakes an accept waiting in its thread
            self._listener.close()
            self._listener = None
            self.console_socket.unlink(missing_ok=True)

    def _copy(self) -> None:
        """The terminal's output to the log; at its end (the container's process and
        everything it started are gone) the master goes too."""
        try:
            data = os.read(self.input, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""      # EIO: nobody holds the terminal any more
        if data:
            with open(self.log_file, "ab") as log:
                log.write(data)
            return
        self.close()
