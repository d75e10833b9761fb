"""Starting a container under conmon, its monitor, in a mount namespace of its own.

conmon runs `crun create` and stays: it is the container's parent, so the
container keeps running, its stdout/stderr keep going to its log, and its
exit code (and an OOM kill) get recorded, whatever happens to the agent.
`--log-path passthrough` hands the log file itself to the container as
stdout and stderr, so the log is the command's raw bytes, as before.

It runs in a private mount namespace (`unshare --mount`, slave propagation
so that host unmounts such as `ip netns delete` still reach it) where a
small shell step first mounts the container's overlay root and, on hybrid
cgroup hosts that need it, hides the cgroup2 controller list from crun
(cgroups.py). The overlay therefore lives exactly as long as the container.

conmon reports the result of `crun create` on a sync pipe: {"data": PID}
or {"data": -1, "message": ...}. The caller then runs `crun start`.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import time
from dataclasses import dataclass
from pathlib import Path

from agent.oci.container_dir import ContainerDir
from agent.oci.model import ContainerError
from agent.oci.rootfs import Overlay
from proto import tools
from proto.tools import ToolError

# $1 error file, $2 overlay target, $3 overlay options, $4 empty file to hide
# the cgroup2 controllers with ("" = leave them), then conmon's argv.
LAUNCH = r"""
set -e
errors=$1 target=$2 options=$3 hide=$4
shift 4
exec 3>&2 2>>"$errors"
mount -t overlay -o "$options" vxmesh-rootfs "$target"
if [ -n "$hide" ]; then mount --bind "$hide" /sys/fs/cgroup/unified/cgroup.controllers; fi
exec 2>&3 3>&-
exec "$@"
"""
CREATE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Launch:
    container_id: str
    name: str
    crun_root: Path
    overlay: Overlay
    hide_controllers: Path | None     # an empty file, or None
    create_options: tuple[str, ...] = ()   # more options of `crun create` (run -t: --console-socket)


async def create(launch: Launch, files: ContainerDir, stdin: int | None = None) -> int:
    """Have conmon create the container; return the container's host PID. Its first
    process's stdin is /dev/null, or `stdin` (run -i), passed through conmon."""
    try:
        argv = _argv(launch, files)
    except ToolError as e:
        raise ContainerError(f"container {launch.name!r}: {e}") from None
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        log = os.open(files.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            launcher = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin, stdout=log, stderr=log,
                pass_fds=(write_end,), cwd=files.monitor, start_new_session=True,
                env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                     "_OCI_SYNCPIPE": str(write_end)})
        finally:
            os.close(log)
        os.close(write_end)
        write_end = -1
        # conmon forks and its first process exits at once; the second reports on the pipe.
        try:
            status = await asyncio.wait_for(launcher.wait(), CREATE_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                launcher.kill()
            raise ContainerError(f"container {launch.name!r}: its monitor did not start within "
                                 f"{CREATE_TIMEOUT:g}s") from None
        if status != 0:
            raise ContainerError(f"container {launch.name!r}: {_failure(files, status)}")
        message = await asyncio.to_thread(_read_sync, read_end, CREATE_TIMEOUT)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    pid = message.get("data", -1) if message else -1
    if not isinstance(pid, int) or pid <= 0:
        reason = (message or {}).get("message") or _last_line(files.crun_log) or "its monitor exited"
        raise ContainerError(f"container {launch.name!r}: {' '.join(str(reason).split())}")
    return pid


def _argv(launch: Launch, files: ContainerDir) -> list[str]:
    cid = launch.container_id
    conmon = [
        tools.binary("conmon"), "--api-version", "1", "--cid", cid, "--cuuid", cid,
        "--name", launch.name, "--runtime", tools.binary("crun"), "--bundle", str(files.bundle),
        "--container-pidfile", str(files.pid_file), "--conmon-pidfile", str(files.monitor_pid_file),
        "--log-path", "passthrough", "--persist-dir", str(files.monitor), "--log-level", "error",
        "--runtime-arg", f"--root={launch.crun_root}", "--runtime-arg", "--cgroup-manager=cgroupfs",
        "--runtime-arg", f"--log=file:{files.crun_log}",
        *(f"--runtime-opt={option}" for option in launch.create_options),
    ]
    hide = str(launch.hide_controllers) if launch.hide_controllers else ""
    return [tools.binary("unshare"), "--mount", "--propagation", "slave", "sh", "-c", LAUNCH,
            "vxmesh-launch", str(files.launch_errors), str(launch.overlay.target),
            launch.overlay.options(), hide, *conmon]


def _read_sync(fd: int, timeout: float) -> dict | None:
    """conmon's first JSON line on the sync pipe, or None if it closed the pipe without one."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise ContainerError(f"conmon did not report within {timeout:g}s")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\n", 1)[0]
    try:
        return json.loads(line) if line else None
    except ValueError:
        return {"message": line.decode(errors="replace")}


def _failure(files: ContainerDir, status: int) -> str:
    for source in (files.launch_errors, files.crun_log):
        text = _last_line(source)
        if text:
            return f"could not set up its monitor: {text}"
    return f"could not set up its monitor (status {status})"


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()
                 if line.strip()]
    except FileNotFoundError:
        return ""
    if not lines:
        return ""
    # crun's --log lines are JSON or "time level msg"; keep the message part.
    last = lines[-1]
    try:
        return str(json.loads(last).get("msg", last))
    except (ValueError, AttributeError):
        return last
