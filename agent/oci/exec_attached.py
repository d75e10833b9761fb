"""`exec -i` / `exec -t`: a command in a running container with the user's input.

As exec_session.py's `run`, with the command's standard input fed from
`inputs` (what the user types, a resize, or the end of input). With `tty`,
the command's stdin, stdout and stderr are the slave of a pseudo-terminal
the agent opens, of the user's size, and everything it writes comes back as
stdout, as Docker's `-t`; without, stdin is a pipe and stdout and stderr
stay apart. The terminal is the agent's (the host's devpts), passed to the
command as its descriptors: the command sees a terminal on them.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import select
import struct
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agent.oci.container_dir import ContainerDir
from agent.oci.crun import Crun
from agent.oci.exec_session import _kill_command, _output, _write_process


@dataclass(frozen=True)
class Input:
    """One thing the user sent: bytes typed, a new terminal size, or the end of input."""
    data: bytes = b""
    rows: int = 0
    cols: int = 0
    closed: bool = False


def set_size(fd: int, rows: int, cols: int) -> None:
    if rows and cols:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def run(crun: Crun, container_id: str, name: str, files: ContainerDir, command: list[str],
              env: dict[str, str], tty: bool, size: tuple[int, int],
              inputs: asyncio.Queue[Input]) -> AsyncIterator[tuple[str, bytes | int]]:
    token = secrets.token_hex(8)
    process_file = files.exec_dir / f"{token}.json"
    pid_file = files.exec_dir / f"{token}.pid"
    await asyncio.to_thread(_write_process, files, process_file, command, env)
    opened: list[int] = []
    if tty:
        master, slave = os.openpty()
        opened += [master, slave]
        set_size(master, *size)
        os.set_blocking(master, False)
        stdin_write, child = master, (slave, slave, slave)
        streams = {master: "stdout"}
    else:
        in_read, stdin_write = os.pipe2(os.O_CLOEXEC)
        out_read, out_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        err_read, err_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        opened += [in_read, stdin_write, out_read, out_write, err_read, err_write]
        os.set_blocking(out_write, True)
        os.set_blocking(err_write, True)
        child = (in_read, out_write, err_write)
        streams = {out_read: "stdout", err_read: "stderr"}
    proc = None
    feeding = None
    try:
        proc = await asyncio.create_subprocess_exec(
            *crun.argv("exec", "--process", str(process_file), "--pid-file", str(pid_file), container_id),
            stdin=child[0], stdout=child[1], stderr=child[2])
        for fd in set(child):          # the command holds them now
            os.close(fd)
            opened.remove(fd)
        feeding = asyncio.create_task(feed(inputs, stdin_write, tty, opened))
        async for item in _output(proc, streams, pid_file, name):
            yield item
    finally:
        if feeding is not None:
            feeding.cancel()
        if proc is not None and proc.returncode is None:
            await _kill_command(pid_file, proc)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        for fd in opened:
            with contextlib.suppress(OSError):
                os.close(fd)
        for path in (process_file, pid_file):
            path.unlink(missing_ok=True)


async def feed(inputs: asyncio.Queue[Input], fd: int, tty: bool, opened: list[int]) -> None:
    """What the user sends, to the command's stdin (the terminal's master with a tty);
    at the end of input a pipe is closed (and taken out of `opened`)."""
    while True:
        item = await inputs.get()
        if item.rows and tty:
            set_size(fd, item.rows, item.cols)
        if item.data:
            await asyncio.to_thread(_write_all, fd, item.data)
        if item.closed:
            if tty:
                # The end of input on a terminal is its EOF character, as a user's ^D.
                await asyncio.to_thread(_write_all, fd, b"\x04")
            else:
                os.close(fd)
                opened.remove(fd)
            return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
