"""Run an extra command inside a running container, streaming its output.

The namespaces are opened here, from /proc/PID/ns/*, and the PID's start
time is checked afterwards: the open files pin those namespaces, so even if
PID 1 died and its PID were reused before nsenter runs, nsenter cannot enter
some other process's namespaces (which `nsenter --target PID` could).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator

from agent.runtime.model import ContainerError
from agent.runtime.procfs import ProcessIdentity, is_alive

# (/proc/PID/ns entry, nsenter option); pid must be entered for the command
# to see the container's /proc the way its own processes do.
_NAMESPACES = (
    ("ipc", "--ipc"),
    ("uts", "--uts"),
    ("net", "--net"),
    ("pid", "--pid"),
    ("mnt", "--mount"),
)

_CHUNK = 65536


async def run_in_container(
    who: ProcessIdentity, container: str, command: list[str], env: dict[str, str],
) -> AsyncIterator[tuple[str, bytes | int]]:
    """Yield ("stdout", bytes) / ("stderr", bytes) as they come, then ("exit", code).

    The code is 128+N if the command died of signal N. Closing the generator
    early (e.g. `contextlib.aclosing`) kills the command.
    """
    if not command or not command[0]:
        raise ContainerError(f"exec in {container!r}: command must be a non-empty list")
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise ContainerError("exec needs nsenter (util-linux), which is not on PATH")
    ns_fds = _open_namespaces(who, container)
    # Our own pipes, not asyncio's PIPE: Process.wait() also waits for its
    # pipes to close, which a process that escaped the kill could hold forever.
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pipes = {"stdout": open(out_r, "rb", buffering=0), "stderr": open(err_r, "rb", buffering=0)}
    try:
        argv = [nsenter, *(f"{opt}=/proc/self/fd/{fd}" for fd, (_, opt) in zip(ns_fds, _NAMESPACES))]
        proc = await asyncio.create_subprocess_exec(
            *argv, "--", *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            env=env,
            pass_fds=ns_fds,
            # Own process group: nsenter forks the command (to enter the pid
            # namespace), and an early close must kill both.
            start_new_session=True,
            cwd="/",
        )
    except BaseException:
        for pipe in pipes.values():
            pipe.close()
        raise
    finally:
        for fd in (*ns_fds, out_w, err_w):
            os.close(fd)

    loop = asyncio.get_running_loop()
    streams: dict[str, asyncio.StreamReader] = {}
    transports: list[asyncio.BaseTransport] = []
    reads: dict[asyncio.Task[bytes], str] = {}
    try:
        for name, pipe in pipes.items():
            reader = asyncio.StreamReader()
            transport, _ = await loop.connect_read_pipe(
                lambda reader=reader: asyncio.StreamReaderProtocol(reader), pipe)
            transports.append(transport)
            streams[name] = reader
            reads[asyncio.create_task(reader.read(_CHUNK))] = name
        # One read in flight per stream: a slow consumer slows the command
        # down (pipe back-pressure) instead of growing a buffer here.
        while reads:
            done, _ = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: reads[t]):
                name = reads.pop(task)
                chunk = task.result()
                if chunk:
                    reads[asyncio.create_task(streams[name].read(_CHUNK))] = name
                    yield name, chunk
        code = await proc.wait()
        yield "exit", 128 - code if code < 0 else code
    finally:
        for task in reads:
            task.cancel()
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
        for transport in transports:
            transport.close()
        for pipe in pipes.values():
            pipe.close()  # no-op for those a transport already closed


def _open_namespaces(who: ProcessIdentity, container: str) -> list[int]:
    fds: list[int] = []
    running = False
    try:
        for entry, _ in _NAMESPACES:
            fds.append(os.open(f"/proc/{who.pid}/ns/{entry}", os.O_RDONLY | os.O_CLOEXEC))
        running = is_alive(who)
    except OSError:
        pass  # PID 1 gone (or a zombie, whose ns links are gone too)
    finally:
        if not running:
            for fd in fds:
                os.close(fd)
    if not running:
        raise ContainerError(f"exec in {container!r}: the container is not running")
    return fds
