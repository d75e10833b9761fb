"""`python -m agent.runtime.shim <state-dir> [cgroup.procs ...]`: start one container, then exit.

The agent runs this detached (own session, stdin /dev/null) so the container
never depends on the agent process. The shim moves itself into the
container's cgroup (the agent created it and set its limits; every process
forked from here on inherits it), joins the named network namespace (none
named: it stays in its own, like --network host), unshares pid/uts/ipc,
sets the hostname and forks the container's PID 1
(agent.runtime.init_process), which makes its own mount namespace. Once
PID 1 reports that the command was exec'd, the shim writes pid.json and
exits, leaving PID 1 to be adopted by the host's init; on failure it writes
start-error.json instead.

The shim must be a fresh process: the new pid namespace only applies to
children of the caller, and joining the cgroup or namespaces from the
agent would move the agent itself (or just one of its threads, for setns).

Exit status: 0 started, 1 start failed (see start-error.json), 2 bad usage.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from agent import linux
from agent.runtime import cgroups, init_process, procfs
from agent.runtime.model import ContainerConfig, ContainerError
from agent.runtime.statedir import Launched, StartFailure, StateDir
from proto.private_files import open_private


class StartError(Exception):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(f"usage: {argv[0]} <container-state-dir> [cgroup.procs ...]", file=sys.stderr)
        return 2
    state = StateDir(Path(argv[1]))
    try:
        config = state.read_config()
        if config is None:
            raise StartError(f"no {state.config_file}", init_process.EXIT_RUNTIME_FAILED)
        launched = launch(config, state, argv[2:])
    except (StartError, ContainerError) as e:
        code = e.exit_code if isinstance(e, StartError) else init_process.EXIT_RUNTIME_FAILED
        state.write_start_failure(StartFailure(error=str(e), exit_code=code, failed_at=time.time()))
        print(f"vxmesh shim: {e}", file=sys.stderr)
        return 1
    state.write_launched(launched)
    return 0


def launch(config: ContainerConfig, state: StateDir, cgroup_procs: list[str]) -> Launched:
    try:
        # Before any fork: PID 1 and the command must never run outside the limits.
        cgroups.join(cgroup_procs)
    except cgroups.CgroupError as e:
        raise StartError(f"cannot join the container's cgroup: {e}",
                         init_process.EXIT_RUNTIME_FAILED) from e
    _enter_namespaces(config)
    log_fd = open_private(state.log_file, append=True)
    report_r, report_w = os.pipe()  # close-on-exec, see init_process.run
    # PID 1 drops signals it has no handler for. Blocked signals are kept
    # pending instead, so a stop that races the start is not lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, init_process.FORWARDED_SIGNALS)
    started_at = time.time()
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        init_process.run(config, state, log_fd, report_w)
    os.close(report_w)
    os.close(log_fd)
    # PID 1 is our child until we exit, so its /proc entry (zombie or not)
    # cannot vanish before we have read its start time.
    who = procfs.identify(pid)
    if who is None:
        raise StartError(f"container PID 1 ({pid}) vanished", init_process.EXIT_RUNTIME_FAILED)
    with os.fdopen(report_r, "rb") as f:
        report = f.read()
    if report:
        os.waitpid(pid, 0)  # it exits right after reporting: leave no zombie behind
        failure = json.loads(report)
        raise StartError(failure["error"], int(failure["exit_code"]))
    return Launched(pid=pid, start_time=who.start_time, started_at=started_at)


def _enter_namespaces(config: ContainerConfig) -> None:
    if config.netns_path:
        _join_netns(config.netns_path)
    try:
        linux.unshare(linux.CLONE_NEWPID | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC)
        linux.sethostname(config.hostname)
    except OSError as e:
        raise StartError(f"cannot create namespaces for {config.name!r}: {e.strerror}",
                         init_process.EXIT_RUNTIME_FAILED) from e


def _join_netns(path: str) -> None:
    # Any namespace file will do, including one other processes (another
    # container: --network container:NAME) are already using.
    try:
        netns_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise StartError(f"cannot open network namespace {path}: {e.strerror}",
                         init_process.EXIT_RUNTIME_FAILED) from e
    try:
        linux.setns(netns_fd, linux.CLONE_NEWNET)
    except OSError as e:
        raise StartError(f"cannot join network namespace {path}: {e.strerror}",
                         init_process.EXIT_RUNTIME_FAILED) from e
    finally:
        os.close(netns_fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
