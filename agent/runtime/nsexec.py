"""Run an extra command inside a running container, streaming its output.

The namespaces are opened here, from /proc/PID/ns/*, and the PID's start
time is checked afterwards: the open files pin those namespaces, so even if
PID 1 died and its PID were reused before nsenter runs, nsenter cannot enter
some other process's namespaces (which `nsenter --target PID` could).

nsenter also moves the command into the container's root: entering a mount
namespace sets the process's root to that namespace's root, which for a
rootfs container is the rootfs, so the command is looked up inside it.
"""
from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

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
    cgroup_procs: Sequence[Path] = (),
) -> AsyncIterator[tuple[str, bytes | int]]:
    """Yield ("stdout", bytes) / ("stderr", bytes) as they come, then ("exit", code).

    The code is 128+N if the command died of signal N. Closing the generator
    early (e.g. `contextlib.aclosing`) kills the command. `cgroup_procs` are
    the container's cgroup.procs files: the command runs under its limits.
    """
    if not command or not command[0]:
        raise ContainerError(f"exec in {container!r}: command must be a non-empty list")
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise ContainerError("exec needs nsenter (util-linux), which is not on PATH")
    cgroup_fds = _open_cgroups(cgroup_procs, container)
    try:
        ns_fds = _open_namespaces(who, container)
    except BaseException:
        for fd in cgroup_fds:
            os.close(fd)
        raise
    # Our own pipes, not asyncio's PIPE: Process.wait() also waits for its
    # pipes to close, which a process that escaped the kill could hold forever.
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pipes = {"stdout": open(out_r, "rb", buffering=0), "stderr": open(err_r, "rb", buffering=0)}
    try:
        argv = [nsenter, *(f"{opt}=/proc/self/fd/{fd}" for fd, (_, opt) in zip(ns_fds, _NAMESPACES))]
        argv += ["--", *command]
        if cgroup_procs:
            argv = _joining_cgroup(cgroup_procs, argv)
        proc = await asyncio.create_subprocess_exec(
            *argv,
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
        for fd in (*cgroup_fds, *ns_fds, out_w, err_w):
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


def _open_cgroups(procs_files: Sequence[Path], container: str) -> list[int]:
    fds: list[int] = []
    try:
        for procs in procs_files:
            fds.append(os.open(procs, os.O_WRONLY | os.O_CLOEXEC))
    except OSError as e:
        for fd in fds:
            os.close(fd)
        raise ContainerError(
            f"exec in {container!r}: cannot open its cgroup {procs}: {e.strerror}") from e
    return fds


def _joining_cgroup(procs_files: Sequence[Path], argv: list[str]) -> list[str]:
    """`argv` behind a shell that first moves itself into the cgroup, then execs
    it: nsenter (same pid) and the command it forks inherit the cgroup.

    A shell rather than a preexec_fn: Python code between fork and exec in a
    multi-threaded process (gRPC's threads) can crash or deadlock the child.
    """
    # "0" written to cgroup.procs means "the writing process".
    joins = "".join(f"echo 0 > {shlex.quote(str(path))} || exit 125; " for path in procs_files)
    return ["/bin/sh", "-c", joins + 'exec "$@"', "vxmesh-exec", *argv]


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
