"""`exec` in a running container: `crun exec` with the container's own process spec, args replaced.

The command runs with the container's user, working directory, capabilities,
no_new_privileges and seccomp profile, and its environment with the exec's
laid over it. Output is streamed as it comes, and the session ends when the
command ends, even if something it started in the background still holds
its stdout (the pipes are ours, read until they are empty, then closed).

crun writes the command's host PID to a pid file just after starting it;
stderr from before that moment is crun's own and becomes the error if the
command never started. Closing the stream early kills the command.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

from agent.oci.container_dir import ContainerDir
from agent.oci.crun import Crun
from agent.oci.model import ContainerError
from proto.private_files import write_private
from proto import tools

READ_SIZE = 65536
# crun writes the pid file a moment after the command started.
PID_FILE_WAIT = 5.0


async def run(crun: Crun, container_id: str, name: str, files: ContainerDir, command: list[str],
              env: dict[str, str]) -> AsyncIterator[tuple[str, bytes | int]]:
    token = secrets.token_hex(8)
    process_file = files.exec_dir / f"{token}.json"
    pid_file = files.exec_dir / f"{token}.pid"
    await asyncio.to_thread(_write_process, files, process_file, command, env)
    out_read, out_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    err_read, err_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    os.set_blocking(out_write, True)
    os.set_blocking(err_write, True)
    proc = None
    try:
        proc = await asyncio.create_subprocess_exec(
            *crun.argv("exec", "--process", str(process_file), "--pid-file", str(pid_file),
                       container_id),
            stdin=asyncio.subprocess.DEVNULL, stdout=out_write, stderr=err_write)
        os.close(out_write)
        os.close(err_write)
        out_write = err_write = -1
        async for item in _output(proc, {out_read: "stdout", err_read: "stderr"}, pid_file, name):
            yield item
    finally:
        if proc is not None and proc.returncode is None:
            # Killing crun alone would leave the command running in the container.
            await _kill_command(pid_file, proc)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        for fd in (out_read, err_read, out_write, err_write):
            if fd >= 0:
                os.close(fd)
        for path in (process_file, pid_file):
            path.unlink(missing_ok=True)


async def _output(proc: asyncio.subprocess.Process, streams: dict[int, str], pid_file: Path,
                  name: str) -> AsyncIterator[tuple[str, bytes | int]]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, bytes | int]] = asyncio.Queue()
    open_fds = set(streams)

    def readable(fd: int) -> None:
        chunk = _read(fd)
        if chunk:
            queue.put_nowait((streams[fd], chunk))
        elif chunk is not None:  # end of file
            loop.remove_reader(fd)
            open_fds.discard(fd)

    for fd in streams:
        loop.add_reader(fd, readable, fd)
    exit_watch = asyncio.create_task(proc.wait())
    exit_watch.add_done_callback(lambda task: queue.put_nowait(("exit", task.result()))
                                 if not task.cancelled() else None)
    held = b""
    try:
        while True:
            kind, data = await queue.get()
            if kind == "exit":
                code = data
                break
            if kind == "stderr" and not pid_file.exists():
                held += data  # crun's, until the command has started
                continue
            if held:
                yield "stderr", held
                held = b""
            yield kind, data
        # What the command wrote before it ended is in the pipes: read it all.
        for fd in list(open_fds):
            while chunk := _read(fd):
                if streams[fd] == "stderr" and not pid_file.exists():
                    held += chunk
                else:
                    yield streams[fd], chunk
    finally:
        for fd in streams:
            loop.remove_reader(fd)
        exit_watch.cancel()
    if not pid_file.exists():
        raise ContainerError(f"exec in {name!r}: {tools.reason(held) or f'crun exited {code}'}")
    if held:
        yield "stderr", held
    yield "exit", code


def _read(fd: int) -> bytes | None:
    """Up to READ_SIZE bytes; b"" at end of file, None when nothing is there right now."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError as e:
        if e.errno == errno.EIO:
            return b""
        raise


def _write_process(files: ContainerDir, path: Path, command: list[str], env: dict[str, str]) -> None:
    """The container's own OCI process, with args and environment replaced."""
    if not command or not all(isinstance(a, str) for a in command) or not command[0]:
        raise ContainerError(f"exec: command must be a non-empty list of strings, got {command!r}")
    base = json.loads((files.bundle / "config.json").read_text())["process"]
    merged = dict(entry.split("=", 1) for entry in base.get("env", []) if "=" in entry)
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ContainerError(f"exec: invalid environment variable {key!r}")
        merged[key] = value
    # An exec's terminal, if any, is the agent's (exec_attached.py), never crun's.
    write_private(path, json.dumps({**base, "terminal": False, "args": list(command),
                                    "env": [f"{k}={v}" for k, v in merged.items()]}))


async def _kill_command(pid_file: Path, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + PID_FILE_WAIT
    while not pid_file.exists() and proc.returncode is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
