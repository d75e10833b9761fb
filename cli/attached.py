"""`exec -i` / `exec -t` on the user's side: standard input to the container,
the terminal in raw mode while a `-t` session runs (so keys such as ^C reach
the command, not this process), and the terminal's size, also as it changes."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import termios
import tty as tty_modes
from collections.abc import AsyncIterator

from proto import vxmesh_pb2 as pb

READ_SIZE = 4096


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size()
    return size.lines, size.columns


@contextlib.contextmanager
def raw_terminal(enabled: bool):
    """Raw mode on this process's terminal for the session, restored however it ends."""
    fd = sys.stdin.fileno()
    if not enabled or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty_modes.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def inputs(start: pb.ExecRequest, interactive: bool, tty: bool) -> AsyncIterator[pb.ExecInput]:
    """The request, then what is read from stdin (with -i) and each new terminal size (with -t)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[pb.ExecInput | None] = asyncio.Queue()
    fd = sys.stdin.fileno()
    yield pb.ExecInput(start=start)

    def readable() -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except OSError:
            data = b""
        if data:
            queue.put_nowait(pb.ExecInput(stdin=data))
        else:
            loop.remove_reader(fd)
            queue.put_nowait(pb.ExecInput(stdin_closed=True))

    if interactive:
        loop.add_reader(fd, readable)
    if tty:
        def resized() -> None:
            rows, cols = terminal_size()
            queue.put_nowait(pb.ExecInput(rows=rows, cols=cols))
        loop.add_signal_handler(signal.SIGWINCH, resized)
    try:
        while True:
            message = await queue.get()
            yield message
    finally:
        if interactive:
            loop.remove_reader(fd)
        if tty:
            loop.remove_signal_handler(signal.SIGWINCH)
