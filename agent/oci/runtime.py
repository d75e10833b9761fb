"""The agent's handle on its containers, run by crun under conmon: start, observe, stop, exec, remove.

Same operations as before the switch to an OCI runtime (start(config),
state(id), list(), stop(id, timeout), kill(id, signal), exec(id, command,
env), wait_exit(id), remove(id), log_path(id)), plus remove_orphans(ids)
for what a crash left behind.

Layout under `root` (one per host, e.g. <state root>/<host>/oci):
  containers/<id>/   bundle, writable layer, log, monitor files (container_dir.py)
  crun/              crun's --root: its state for this host's containers only
and cgroups under `<hierarchy>/<cgroup parent>/<id>`.

All truth lives on disk, in crun's state, in /proc and in the cgroup tree,
never in this object: a new Runtime built after an agent restart (or
crash) finds every container as the old one left it, still running under
its conmon. The one exception is the input of a `run -i`/`-t` container
(first_process_io.py), which lives in the agent's descriptors.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import platform
import signal as signals
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

from agent.oci import exec_attached, exec_session, monitor, process, processes, spec, users
from agent.oci.cgroups import UNIFIED, HostCgroups
from agent.oci.container_dir import ContainerDir, Launched, Record, StartFailure
from agent.oci.crun import Crun
from agent.oci.first_process_io import DRAIN_SECONDS, FirstProcessIO
from agent.oci.model import (
    CONTAINER_ID,
    CREATED,
    EXITED,
    RUNNING,
    ContainerConfig,
    ContainerError,
    ContainerState,
    check_container_id,
)
from agent.oci.rootfs import Overlay
from proto.private_files import write_private

# After SIGKILL the kernel tears the pid namespace down; this is only a backstop.
KILL_GRACE = 5.0
# conmon records the exit code right after its container exits.
MONITOR_GRACE = 5.0
# Docker's codes for a start that never ran the command.
EXIT_NOT_FOUND = 127
EXIT_NOT_RUNNABLE = 126
EXIT_START_FAILED = 125
# What a container whose monitor died first is reported as (its real status is lost).
EXIT_LOST = 128 + signals.SIGKILL


class Runtime:
    def __init__(self, root: Path, cgroup_parent: str):
        """`cgroup_parent`: the cgroup all containers go under; one per agent on a machine."""
        if any(part in ("", ".", "..") for part in cgroup_parent.split("/")):
            raise ContainerError(f"cgroup parent {cgroup_parent!r} must be a relative path "
                                 "without '..'")
        self.root = Path(root)
        self.cgroup_parent = cgroup_parent
        self.crun = Crun(self.root / "crun")
        self.cgroups = HostCgroups.detect()
        self._containers = self.root / "containers"
        self._empty_file = self.root / "empty"
        self._machine = platform.machine()
        # Serialise start/stop/remove of one id within this process.
        self._locks: dict[str, asyncio.Lock] = {}
        # Held while a cgroup is created under the parent or the parent is removed.
        self._parent_lock = asyncio.Lock()
        # run -i / -t: the first process's stdin or terminal, while it runs (first_process_io.py).
        self._first_io: dict[str, FirstProcessIO] = {}
        self._closing: set[asyncio.Task] = set()

    def log_path(self, container_id: str) -> Path:
        return self._dir(container_id).log_file

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, config: ContainerConfig, before_start: Awaitable[None] | None = None) -> ContainerState:
        """Run the container; return once its command has been exec'd.

        Already running: a no-op returning its state. Exited or never started:
        started again under the same id, with the same writable layer (as
        Docker's `start`), its log appended to.

        `before_start`, when given, is awaited once the container is created and
        before its command starts: what the command needs in place (its
        interfaces) is done while the runtime prepares and creates the container.
        If it fails, the created container is deleted and its error raised.
        """
        await asyncio.to_thread(config.check)
        files = self._dir(config.id)
        async with self._lock(config.id):
            current = await self.state(config.id)
            if current is not None and current.state == RUNNING:
                return current
            await self.crun.delete(config.id)  # the previous run's state, if any
            self._drop_first_io(config.id)
            io = None
            if config.open_stdin or config.tty:
                io = FirstProcessIO(config.tty, files.log_file, self.root / "tty" / f"{config.id[:16]}.sock")
            receiving = asyncio.create_task(io.receive()) if io is not None else None
            try:
                await asyncio.to_thread(self._prepare, files, config)
                launch = self._launch(config, files)
                if io is not None:
                    launch = dataclasses.replace(launch, create_options=tuple(io.runtime_options))
                async with self._parent_lock:
                    pid = await monitor.create(launch, files, stdin=io and io.child_stdin)
                if io is not None and receiving is not None:
                    await receiving
                    io.started()
                launched = await asyncio.to_thread(self._launched, files, pid)
                if before_start is not None:
                    try:
                        await before_start
                    except BaseException:
                        with contextlib.suppress(ContainerError):
                            await self.crun.delete(config.id)   # nothing created is left behind
                        raise
                await self.crun.start(config.id)
            except ContainerError as e:
                if io is not None:
                    io.close()
                await self._failed_start(config, files, str(e))
                raise
            finally:
                if receiving is not None and not receiving.done():
                    if io is not None:
                        io.close()      # ends the wait for the terminal
                    await asyncio.gather(receiving, return_exceptions=True)
            await asyncio.to_thread(files.write_launched, launched)
            if io is not None:
                self._first_io[config.id] = io
                closing = asyncio.get_running_loop().create_task(self._close_after_exit(config.id, io, launched))
                self._closing.add(closing)      # held, so it is not collected before it runs
                closing.add_done_callback(self._closing.discard)
            observed = await self.state(config.id)
            assert observed is not None
            return observed

    async def stop(self, container_id: str, timeout: float = 10.0) -> ContainerState:
        """The image's stop signal (SIGTERM by default), then SIGKILL after `timeout` seconds."""
        if timeout < 0:
            raise ContainerError(f"stop timeout must be >= 0, got {timeout}")
        async with self._lock(container_id):
            current = await self._existing(container_id)
            if current.state != RUNNING:
                return current
            files = self._dir(container_id)
            launched = await asyncio.to_thread(files.read_launched)
            record = await asyncio.to_thread(files.read_record)
            assert launched is not None and record is not None
            await self._signal(container_id, _stop_signal(record))
            if not await _wait_exit(launched, timeout):
                await self._signal(container_id, signals.SIGKILL)
                if not await _wait_exit(launched, KILL_GRACE):
                    raise ContainerError(f"container {current.name!r}: PID {current.pid} still "
                                         f"alive {KILL_GRACE}s after SIGKILL")
            return await self._existing(container_id)

    async def kill(self, container_id: str, signal: int) -> None:
        """Send `signal` to the container's first process (the parameter's name is the API's)."""
        try:
            sig = signals.Signals(signal)
        except ValueError:
            raise ContainerError(f"unknown signal {signal}") from None
        current = await self._existing(container_id)
        if current.state != RUNNING:
            raise ContainerError(f"cannot signal container {current.name!r}: it is not running")
        await self._signal(container_id, sig)

    async def wait_exit(self, container_id: str) -> None:
        """Return once the container has exited and its exit is recorded (at once if not running)."""
        launched = await asyncio.to_thread(self._dir(container_id).read_launched)
        if launched is not None:
            await _wait_exit(launched, None)

    async def remove(self, container_id: str) -> None:
        """Delete a stopped container: crun state, cgroups, bundle, layer, log; unknown ids are gone."""
        files = self._dir(container_id)
        async with self._lock(container_id):
            current = await self.state(container_id)
            if current is not None and current.state == RUNNING:
                raise ContainerError(
                    f"cannot remove container {current.name!r}: it is running, stop it first")
            await self._remove(container_id, files)
            self._drop_first_io(container_id)
        self._locks.pop(container_id, None)

    async def remove_orphans(self, known_ids: set[str]) -> list[str]:
        """Remove every container of this host not in `known_ids`, running or not; return their ids.

        For the agent after a restart: containers, crun state and cgroups no
        record explains. Ids being started or removed right now count as known.
        """
        busy = {cid for cid, lock in self._locks.items() if lock.locked()}
        found = await asyncio.to_thread(self._all_ids)
        removed, failures = [], []
        for container_id in sorted(found - set(known_ids) - busy):
            try:
                await self._remove(container_id, self._dir(container_id))
                removed.append(container_id)
            except ContainerError as e:
                failures.append(str(e))  # one stuck container must not shield the rest
        if failures:
            raise ContainerError("removing stray containers: " + "; ".join(failures))
        return removed

    # -- observing -------------------------------------------------------------------

    async def state(self, container_id: str) -> ContainerState | None:
        """What the container is doing now, or None if there is no such container."""
        files = self._dir(container_id)
        # Its files in one thread hop, not one per file: every pass asks this of
        # every container of the host, twice (its converge and its report).
        known = await asyncio.to_thread(_state_from_files, files)
        if not isinstance(known, _Unsure):
            return known
        record, launched = known.record, known.launched
        observed = await self.crun.state(container_id)
        if observed is not None and observed.status in ("running", "paused"):
            return ContainerState(record.id, record.name, RUNNING, launched.pid, 0, launched.started_at, 0.0)
        # Both gone: the monitor either recorded the exit since we looked,
        # or was killed first. Then a stand-in is recorded (only if there
        # is still none), so finished_at stays put.
        await asyncio.to_thread(files.write_exit_if_missing, EXIT_LOST)
        exited = await asyncio.to_thread(files.read_exit)
        assert exited is not None
        return await asyncio.to_thread(_exited_state, files, record, launched, exited)

    async def list(self) -> list[ContainerState]:
        found = []
        for container_id in sorted(await asyncio.to_thread(self._dir_ids)):
            state = await self.state(container_id)
            if state is not None:
                found.append(state)
        return sorted(found, key=lambda s: (s.name, s.id))

    async def exec(self, container_id: str, command: list[str],
                   env: dict[str, str] | None = None) -> AsyncIterator[tuple[str, bytes | int]]:
        """Run `command` in the container: yields ("stdout"|"stderr", bytes), then ("exit", code).

        It runs as the container's first process does (user, working
        directory, capabilities, seccomp), with the container's environment
        and `env` laid over it. Raises ContainerError (on first iteration)
        if the container is not running or the command cannot be started.
        Closing the iterator early kills the command.
        """
        files = self._dir(container_id)
        current = await self._existing(container_id)
        if current.state != RUNNING:
            raise ContainerError(f"exec in {current.name!r}: the container is not running")
        async with contextlib.aclosing(exec_session.run(
                self.crun, container_id, current.name, files, command, env or {})) as output:
            async for item in output:
                yield item

    async def exec_attached(self, container_id: str, command: list[str], env: dict[str, str], tty: bool,
                            size: tuple[int, int], inputs: asyncio.Queue) -> AsyncIterator[tuple[str, bytes | int]]:
        """`exec` with the user's input (exec_attached.py): the same yields and errors."""
        files = self._dir(container_id)
        current = await self._existing(container_id)
        if current.state != RUNNING:
            raise ContainerError(f"exec in {current.name!r}: the container is not running")
        async with contextlib.aclosing(exec_attached.run(
                self.crun, container_id, current.name, files, command, env, tty, size, inputs)) as output:
            async for item in output:
                yield item

    async def attach(self, container_id: str, size: tuple[int, int],
                     inputs: asyncio.Queue) -> AsyncIterator[tuple[str, bytes | int]]:
        """run -i / -t: `inputs` to the container's first process, until it exits; then
        yields ("exit", code). Its output is its log. ContainerError when it has no
        input this agent holds (not run with -i or -t, not running, or started before
        the agent's restart)."""
        current = await self._existing(container_id)
        io = self._first_io.get(container_id)
        if current.state != RUNNING or io is None:
            raise ContainerError(f"cannot attach to {current.name!r}: "
                                 + ("it is not running" if current.state != RUNNING else
                                    "it was not started with -i or -t by this agent"))
        launched = await asyncio.to_thread(self._dir(container_id).read_launched)
        feeding = asyncio.create_task(io.feed(inputs, size))
        try:
            if launched is not None:
                await _wait_exit(launched, None)
        finally:
            feeding.cancel()
        final = await self.state(container_id)
        yield "exit", final.exit_code if final is not None else EXIT_LOST

    async def drained(self, container_id: str) -> None:
        """Once a -t container's terminal output is all in its log (at once otherwise)."""
        io = self._first_io.get(container_id)
        if io is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(io.drained.wait(), DRAIN_SECONDS)

    # -- helpers -----------------------------------------------------------------------

    def _drop_first_io(self, container_id: str) -> None:
        io = self._first_io.pop(container_id, None)
        if io is not None:
            io.close()

    async def _close_after_exit(self, container_id: str, io: FirstProcessIO, launched: Launched) -> None:
        """The agent's ends of an exited container's stdin or terminal go (its output drained first)."""
        await _wait_exit(launched, None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(io.drained.wait(), DRAIN_SECONDS)
        if self._first_io.get(container_id) is io:
            self._drop_first_io(container_id)
        else:
            io.close()

    def _dir(self, container_id: str) -> ContainerDir:
        check_container_id(container_id)
        return ContainerDir(self._containers / container_id)

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    async def _existing(self, container_id: str) -> ContainerState:
        current = await self.state(container_id)
        if current is None:
            raise ContainerError(f"no container {container_id[:12]} under {self.root}")
        return current

    async def _signal(self, container_id: str, sig: signals.Signals) -> None:
        try:
            await self.crun.kill(container_id, sig)
        except ContainerError:
            # Exited meanwhile: nothing to signal, which is what the caller wanted.
            current = await self.state(container_id)
            if current is not None and current.state == RUNNING:
                raise

    def _prepare(self, files: ContainerDir, config: ContainerConfig) -> None:
        """Write the record, the bundle and the files the container gets (blocking)."""
        files.prepare()
        image = config.image
        files.write_record(Record(config.id, config.name, image.reference, image.id,
                                  image.config.stop_signal))
        overlay = self._overlay(config, files)
        layers = [files.upper, image.rootfs]
        user = users.resolve(config.user or image.config.user,
                             users.read_layered(layers, "/etc/passwd"),
                             users.read_layered(layers, "/etc/group"))
        resolved = process.resolve(config, user)
        overlay.ensure_directory(resolved.cwd)
        (files.etc / "hostname").write_text(f"{config.hostname}\n")
        (files.etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                         "ip6-loopback\n" + "".join(f"{line}\n" for line in config.hosts_entries))
        etc_names = ["hostname", "hosts"]
        if config.resolv_conf:
            (files.etc / "resolv.conf").write_text(config.resolv_conf)
            etc_names.append("resolv.conf")
        etc_files = {f"/etc/{name}": str(files.etc / name) for name in etc_names}
        host = spec.HostFacts(cgroups_path=f"/{self.cgroup_parent}/{config.id}",
                              swap_limit=self.cgroups.swap_limit,
                              cgroup_namespace=self.cgroups.mode == UNIFIED,
                              machine=self._machine)
        document = spec.build(config, resolved, host, etc_files)
        write_private(files.bundle / "config.json", json.dumps(document, indent=1))  # holds the environment
        if self.cgroups.hide_v2_controllers and not self._empty_file.exists():
            write_private(self._empty_file, "")

    def _overlay(self, config: ContainerConfig, files: ContainerDir) -> Overlay:
        return Overlay(lower=config.image.rootfs, upper=files.upper, work=files.work,
                       target=files.rootfs)

    def _launch(self, config: ContainerConfig, files: ContainerDir) -> monitor.Launch:
        return monitor.Launch(config.id, config.name, self.crun.root, self._overlay(config, files),
                              self._empty_file if self.cgroups.hide_v2_controllers else None)

    def _launched(self, files: ContainerDir, pid: int) -> Launched:
        """The PIDs and start times of the created container and its monitor (blocking)."""
        try:
            monitor_pid = int(files.monitor_pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            raise ContainerError(f"conmon left no readable {files.monitor_pid_file}") from None
        started = processes.start_time(pid)
        monitor_started = processes.start_time(monitor_pid)
        if started is None or monitor_started is None:
            raise ContainerError("the container or its monitor died before it could start")
        return Launched(pid, started, time.time(), monitor_pid, monitor_started)

    async def _failed_start(self, config: ContainerConfig, files: ContainerDir, error: str) -> None:
        """Record why the start failed and leave nothing running or created behind."""
        with contextlib.suppress(ContainerError):
            await self.crun.delete(config.id)
        lowered = error.lower()
        code = EXIT_NOT_FOUND if "not found" in lowered or "no such file" in lowered else \
            EXIT_NOT_RUNNABLE if "permission denied" in lowered else EXIT_START_FAILED
        await asyncio.to_thread(files.write_start_failure, StartFailure(error, code, time.time()))

    async def _remove(self, container_id: str, files: ContainerDir) -> None:
        launched = await asyncio.to_thread(files.read_launched)
        await self.crun.delete(container_id)  # --force: kills it if it still runs
        if launched is not None:
            # The monitor writes its exit record into the directory about to go.
            await processes.wait_gone(launched.monitor_pid, launched.monitor_start_time,
                                      MONITOR_GRACE)
        await asyncio.to_thread(self.cgroups.remove, self.cgroup_parent, container_id)
        await asyncio.to_thread(files.remove)
        async with self._parent_lock:
            await asyncio.to_thread(self.cgroups.remove_parent_if_empty, self.cgroup_parent)

    def _dir_ids(self) -> set[str]:
        try:
            return {e.name for e in self._containers.iterdir() if CONTAINER_ID.match(e.name)}
        except FileNotFoundError:
            return set()

    def _all_ids(self) -> set[str]:
        """Every id this host has anything of: a directory, crun state or a cgroup."""
        crun_ids = {i for i in self.crun.ids() if CONTAINER_ID.match(i)}
        return self._dir_ids() | crun_ids | self.cgroups.container_ids(self.cgroup_parent)


@dataclasses.dataclass(frozen=True)
class _Unsure:
    """Its files say it was started and has not exited, and its monitor is gone: crun knows."""
    record: Record
    launched: Launched


def _state_from_files(files: ContainerDir) -> ContainerState | None | _Unsure:
    """The container's state as its files and its monitor's /proc entry tell it (blocking)."""
    record = files.read_record()
    if record is None:
        return None
    launched = files.read_launched()
    if launched is None:
        failure = files.read_start_failure()
        if failure is not None:
            # As Docker: a command that never ran leaves the container
            # "created", with the would-be exit code and the reason.
            return ContainerState(record.id, record.name, CREATED, 0, failure.exit_code,
                                  0.0, failure.failed_at, failure.error)
        return ContainerState(record.id, record.name, CREATED, 0, 0, 0.0, 0.0)
    exited = files.read_exit()
    if exited is None:
        # The monitor's /proc entry first: while it lives the container runs,
        # and reading it costs microseconds where `crun state` is a process of
        # its own, asked for every container on every pass otherwise.
        if processes.is_alive(launched.monitor_pid, launched.monitor_start_time):
            return ContainerState(record.id, record.name, RUNNING, launched.pid, 0, launched.started_at, 0.0)
        return _Unsure(record, launched)
    return _exited_state(files, record, launched, exited)


def _exited_state(files: ContainerDir, record: Record, launched: Launched,
                  exited: tuple[int, float]) -> ContainerState:
    code, finished_at = exited
    return ContainerState(record.id, record.name, EXITED, 0, code, launched.started_at, finished_at,
                          oom_killed=files.oom_killed())


async def _wait_exit(launched: Launched, timeout: float | None) -> bool:
    """Wait for the command, then for its monitor to record the exit; False on timeout."""
    if not await processes.wait_gone(launched.pid, launched.start_time, timeout):
        return False
    await processes.wait_gone(launched.monitor_pid, launched.monitor_start_time, MONITOR_GRACE)
    return True


def _stop_signal(record: Record) -> signals.Signals:
    name = record.stop_signal.upper()
    if not name:
        return signals.SIGTERM
    try:
        return signals.Signals(int(name)) if name.isdigit() else \
            signals.Signals[name if name.startswith("SIG") else f"SIG{name}"]
    except (KeyError, ValueError):
        return signals.SIGTERM
