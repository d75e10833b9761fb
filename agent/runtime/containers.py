"""The agent's handle on its containers: start, observe, stop, exec, remove.

All truth lives on disk under `root/<container id>/` (see statedir.py), in
/proc and in the cgroup tree (see cgroups.py), never in this object, so a new
Runtime built after an agent restart finds every container exactly as the
old one left it.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import agent
from agent.runtime.cgroups import CgroupError, Cgroups
from agent.runtime.init_process import EXIT_RUNTIME_FAILED, FORWARDED_SIGNALS
from agent.runtime.model import (
    CONTAINER_ID,
    CREATED,
    EXITED,
    RUNNING,
    ContainerConfig,
    ContainerError,
    ContainerState,
    Mount,
    Resources,
    check_container_id,
    command_environment,
)
from agent.runtime.nsexec import run_in_container
from agent.runtime.pidfd import ProcessHandle
from agent.runtime.procfs import ProcessIdentity, is_alive
from agent.runtime.statedir import Exited, StartFailure, StateDir
from proto.private_files import open_private

__all__ = ["ContainerConfig", "ContainerError", "ContainerState", "Mount", "Resources", "Runtime"]

# The shim only sets up namespaces and waits for one exec: seconds at worst.
SHIM_TIMEOUT = 30.0
# After SIGKILL the kernel tears the namespace down; this is only a backstop.
KILL_GRACE = 5.0


class Runtime:
    def __init__(self, root: Path, cgroup_parent: str = "vxmesh"):
        """`cgroup_parent`: the cgroup all containers go under; one per agent on a machine."""
        self.root = Path(root)
        try:
            self.cgroups = Cgroups.detect(cgroup_parent)
        except CgroupError as e:
            raise ContainerError(str(e)) from None
        # Serialises start/stop/remove of one id within this process.
        self._locks: dict[str, asyncio.Lock] = {}

    def log_path(self, container_id: str) -> Path:
        return self._state_dir(container_id).log_file

    async def start(self, config: ContainerConfig) -> ContainerState:
        """Run the container; return once its command has been exec'd.

        Already running: a no-op returning its state. Exited or never started:
        started again under the same id, its log appended to.
        """
        await asyncio.to_thread(config.check)
        state_dir = self._state_dir(config.id)
        async with self._lock(config.id):
            current = await self.state(config.id)
            if current is not None and current.state == RUNNING:
                return current
            shim_log_fd = await asyncio.to_thread(_prepare_launch, state_dir, config, self.cgroups)
            try:
                # -S: the shim needs only the standard library and this
                # package (PYTHONPATH below); skipping site-packages' start-up
                # hooks saves ~20 ms of every container start.
                shim = await asyncio.create_subprocess_exec(
                    sys.executable, "-S", "-m", "agent.runtime.shim", str(state_dir.path),
                    *map(str, self.cgroups.procs_files(config.id)),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=shim_log_fd,
                    stderr=shim_log_fd,
                    env=_shim_environment(),
                    # Detached from the agent: a signal to the agent's process
                    # group (Ctrl-C, systemd stop) must not reach containers.
                    start_new_session=True,
                    cwd="/",
                )
            finally:
                os.close(shim_log_fd)
            try:
                await asyncio.wait_for(shim.wait(), SHIM_TIMEOUT)
            except TimeoutError:
                # PID 1, if forked, is still in the shim's process group.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(shim.pid, signal.SIGKILL)
                await shim.wait()
                raise ContainerError(
                    f"starting container {config.name!r}: shim did not finish in {SHIM_TIMEOUT}s"
                ) from None
            return await asyncio.to_thread(_launch_outcome, state_dir, config, shim.returncode)

    async def state(self, container_id: str) -> ContainerState | None:
        """What the container is doing now, or None if there is no such container."""
        return await asyncio.to_thread(_observe, self._state_dir(container_id))

    async def list(self) -> list[ContainerState]:
        return await asyncio.to_thread(self._observe_all)

    async def stop(self, container_id: str, timeout: float = 10.0) -> ContainerState:
        """SIGTERM to PID 1 (forwarded to the command), SIGKILL after `timeout` seconds."""
        if timeout < 0:
            raise ContainerError(f"stop timeout must be >= 0, got {timeout}")
        async with self._lock(container_id):
            current = await self._existing(container_id)
            if current.state != RUNNING:
                return current
            handle = await self._open_pid1(container_id)
            if handle is not None:
                with handle:
                    handle.send_signal(signal.SIGTERM)
                    if not await handle.wait(timeout):
                        handle.send_signal(signal.SIGKILL)
                        if not await handle.wait(KILL_GRACE):
                            raise ContainerError(
                                f"container {current.name!r}: PID 1 ({current.pid}) still "
                                f"alive {KILL_GRACE}s after SIGKILL")
            return await self._existing(container_id)

    async def kill(self, container_id: str, signal: int) -> None:
        """Send `signal` to the command (through PID 1), or SIGKILL the whole container.

        (The parameter shadows the signal module in here; its name is the API's.)
        """
        sig = _known_signal(signal)
        current = await self._existing(container_id)
        handle = await self._open_pid1(container_id) if current.state == RUNNING else None
        if handle is None:
            raise ContainerError(f"cannot signal container {current.name!r}: it is not running")
        with handle:
            handle.send_signal(sig)

    async def wait_exit(self, container_id: str) -> None:
        """Return once the container's PID 1 has exited (at once if it is not running)."""
        handle = await self._open_pid1(container_id)
        if handle is not None:
            with handle:
                await handle.wait(None)

    async def remove(self, container_id: str) -> None:
        """Delete a stopped container's cgroup, state and log; unknown ids are already gone."""
        state_dir = self._state_dir(container_id)
        async with self._lock(container_id):
            current = await self.state(container_id)
            if current is not None and current.state == RUNNING:
                raise ContainerError(
                    f"cannot remove container {current.name!r}: it is running, stop it first")
            # The cgroup first: if it cannot go, the state stays for a retry.
            who = current.name if current is not None else container_id[:12]
            await asyncio.to_thread(self._remove_cgroup, container_id, who)
            if state_dir.exists():
                await asyncio.to_thread(shutil.rmtree, state_dir.path)
        self._locks.pop(container_id, None)

    async def remove_orphan_cgroups(self, known_ids: set[str]) -> list[str]:
        """Remove cgroups under our parent of containers not in `known_ids`; return their ids.

        For the agent's cleanup after a restart. Ids being started or removed
        right now count as known: their cgroup is not stray.
        """
        busy = {cid for cid, lock in self._locks.items() if lock.locked()}
        try:
            return await asyncio.to_thread(self.cgroups.orphans, set(known_ids) | busy)
        except CgroupError as e:
            raise ContainerError(f"removing stray container cgroups: {e}") from None

    async def exec(
        self, container_id: str, command: list[str], env: dict[str, str] | None = None,
    ) -> AsyncIterator[tuple[str, bytes | int]]:
        """Run `command` inside the container: yields ("stdout"|"stderr", bytes), then ("exit", code).

        It gets the container's environment with `env` laid over it. Raises
        ContainerError (on first iteration) if the container is not running.
        """
        state_dir = self._state_dir(container_id)
        config, launched = await asyncio.to_thread(
            lambda: (state_dir.read_config(), state_dir.read_launched()))
        if config is None:
            raise ContainerError(f"no container {container_id[:12]}")
        if launched is None:
            raise ContainerError(f"exec in {config.name!r}: the container is not running")
        pid1 = ProcessIdentity(launched.pid, launched.start_time)
        full_env = command_environment({**config.env, **(env or {})})
        # A container started before cgroups were set up has none to join.
        in_cgroup = await asyncio.to_thread(self.cgroups.exists, container_id)
        procs = self.cgroups.procs_files(container_id) if in_cgroup else []
        async with contextlib.aclosing(
                run_in_container(pid1, config.name, command, full_env, procs)) as output:
            async for item in output:
                yield item

    # -- helpers -------------------------------------------------------------

    def _state_dir(self, container_id: str) -> StateDir:
        check_container_id(container_id)
        return StateDir(self.root / container_id)

    def _remove_cgroup(self, container_id: str, who: str) -> None:
        try:
            self.cgroups.remove(container_id)
        except CgroupError as e:
            raise ContainerError(f"cannot remove container {who!r}: {e}") from None

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    async def _existing(self, container_id: str) -> ContainerState:
        current = await self.state(container_id)
        if current is None:
            raise ContainerError(f"no container {container_id[:12]} under {self.root}")
        return current

    async def _open_pid1(self, container_id: str) -> ProcessHandle | None:
        launched = await asyncio.to_thread(self._state_dir(container_id).read_launched)
        if launched is None:
            return None
        # pidfd_open plus one /proc read: no I/O that could stall the loop.
        return ProcessHandle.open(ProcessIdentity(launched.pid, launched.start_time))

    def _observe_all(self) -> list[ContainerState]:
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            if CONTAINER_ID.match(entry.name):
                state = _observe(StateDir(entry))
                if state is not None:
                    found.append(state)
        return sorted(found, key=lambda s: (s.name, s.id))


def _observe(state_dir: StateDir) -> ContainerState | None:
    """The container's state from its files and /proc (blocking; run in a thread)."""
    try:
        config = state_dir.read_config()
    except NotADirectoryError:
        return None
    if config is None:
        return None
    launched = state_dir.read_launched()
    if launched is None:
        failure = state_dir.read_start_failure()
        if failure is not None:
            # Like Docker: a command that never ran leaves the container
            # "created", with the would-be exit code and the reason.
            return ContainerState(config.id, config.name, CREATED, 0, failure.exit_code,
                                  0.0, failure.failed_at, failure.error)
        return ContainerState(config.id, config.name, CREATED, 0, 0, 0.0, 0.0)
    if is_alive(ProcessIdentity(launched.pid, launched.start_time)):
        return ContainerState(config.id, config.name, RUNNING, launched.pid, 0,
                              launched.started_at, 0.0)
    exited = state_dir.read_exited()
    if exited is None:
        # PID 1 writes exit.json before it exits, so only SIGKILL leaves
        # none. Record it now so finished_at stays put on later reads.
        exited = Exited(exit_code=128 + signal.SIGKILL, finished_at=time.time())
        state_dir.write_exited(exited)
    return ContainerState(config.id, config.name, EXITED, 0, exited.exit_code,
                          launched.started_at, exited.finished_at)


def _prepare_launch(state_dir: StateDir, config: ContainerConfig, cgroups: Cgroups) -> int:
    """Write the config, forget the previous run, set up the cgroup; return the shim's log fd."""
    state_dir.create()
    state_dir.write_config(config)
    state_dir.forget_last_run()
    try:
        cgroups.create(config.id, config.resources)
    except CgroupError as e:
        # Recorded like any failed start: the container stays "created" with the reason.
        error = f"cannot set up its cgroup: {e}"
        state_dir.write_start_failure(StartFailure(error, EXIT_RUNTIME_FAILED, time.time()))
        raise ContainerError(f"container {config.name!r}: {error}") from None
    return open_private(state_dir.shim_log_file, append=False)


def _launch_outcome(state_dir: StateDir, config: ContainerConfig,
                    shim_status: int | None) -> ContainerState:
    failure = state_dir.read_start_failure()
    if failure is not None:
        raise ContainerError(f"container {config.name!r}: {failure.error}")
    if state_dir.read_launched() is None:
        try:
            shim_output = state_dir.shim_log_file.read_text(errors="replace").strip()
        except FileNotFoundError:
            shim_output = ""
        raise ContainerError(
            f"starting container {config.name!r}: shim exited with status {shim_status} "
            f"without starting it: {shim_output[-2000:] or 'no output'}")
    observed = _observe(state_dir)
    assert observed is not None  # its config was just written
    return observed


def _shim_environment() -> dict[str, str]:
    # PID 1 keeps the shim's environment (the container can read it in
    # /proc/1/environ), so the agent's own variables are not passed on.
    # PYTHONPATH makes `-m agent.runtime.shim` importable from cwd "/" even
    # when vxmesh runs from a source tree rather than an installed package.
    package_root = str(Path(agent.__file__).resolve().parent.parent)
    return {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p),
    }


def _known_signal(signum: int) -> signal.Signals:
    try:
        sig = signal.Signals(signum)
    except ValueError:
        raise ContainerError(f"unknown signal {signum}") from None
    # The container's init drops anything else (PID 1 semantics), so refuse
    # rather than pretend it was delivered.
    if sig != signal.SIGKILL and sig not in FORWARDED_SIGNALS:
        names = ", ".join(s.name for s in (*FORWARDED_SIGNALS, signal.SIGKILL))
        raise ContainerError(f"signal {sig.name} cannot be sent to a container: use one of {names}")
    return sig
