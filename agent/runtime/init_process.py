"""The container's PID 1: a tiny init around the user's command.

Forked by the shim after it unshared the pid namespace, so this process is
PID 1 inside it. It sets up the container's filesystem (own /proc and /sys,
binds, maybe a rootfs: see filesystem.py), starts the command, forwards
signals to it, reaps every orphan that lands on it, and records the
command's exit status in exit.json before exiting (which makes the kernel
kill whatever else is left in the namespace).

Why an init at all: the kernel drops signals sent to a namespace's PID 1
unless it has a handler, so a bare `sleep` as PID 1 could never be stopped
with SIGTERM; and orphans would otherwise stay zombies.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import sys
import time
import traceback
from typing import NoReturn

from agent.runtime import filesystem
from agent.runtime.model import ContainerConfig, command_environment
from agent.runtime.statedir import Exited, StateDir

# Signals a user means for the command, not for the init in front of it.
FORWARDED_SIGNALS = (
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGWINCH,
)

# Python starts with these ignored, and "ignored" survives exec: the command
# must start with the defaults (e.g. `yes | head` relies on SIGPIPE).
_IGNORED_BY_PYTHON = (signal.SIGPIPE, signal.SIGXFSZ)

EXIT_RUNTIME_FAILED = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

_command_pid = 0


class StartFailed(Exception):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def run(config: ContainerConfig, state: StateDir, log_fd: int, report_fd: int) -> NoReturn:
    """Body of PID 1. Never returns: this is a forked copy of the shim.

    `report_fd` is the write end of a close-on-exec pipe to the shim: closing
    it without writing means the command was exec'd; a JSON object
    {"error", "exit_code"} means it was not.
    """
    try:
        try:
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.close(log_fd)
            # Opened before the filesystem changes: with a rootfs, the state
            # directory's path no longer leads anywhere afterwards.
            state_fd = os.open(state.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            filesystem.set_up(config)
            _start_command(config)
        except StartFailed as e:
            _report(report_fd, str(e), e.exit_code)
            os._exit(e.exit_code)
        except filesystem.FilesystemError as e:
            _report(report_fd, str(e), EXIT_RUNTIME_FAILED)
            os._exit(EXIT_RUNTIME_FAILED)
        except OSError as e:
            _report(report_fd, f"setting up container {config.name!r}: {_describe(e)}",
                    EXIT_RUNTIME_FAILED)
            os._exit(EXIT_RUNTIME_FAILED)
        except BaseException as e:
            _report(report_fd, f"setting up container {config.name!r}: internal error {e!r}",
                    EXIT_RUNTIME_FAILED)
            os._exit(EXIT_RUNTIME_FAILED)
        os.close(report_fd)
        code = _supervise()
        try:
            state.write_exited_at(state_fd, Exited(exit_code=code, finished_at=time.time()))
        except OSError as e:
            print(f"vxmesh init: cannot record exit code {code}: {e}", file=sys.stderr)
        os._exit(code)
    except BaseException:
        # A bug in here must still end this process, never fall back into the shim.
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(EXIT_RUNTIME_FAILED)


def _forward(signum: int, _frame: object) -> None:
    if _command_pid:
        try:
            os.kill(_command_pid, signum)
        except ProcessLookupError:
            pass  # already exited; _supervise is about to see it


def _start_command(config: ContainerConfig) -> None:
    """Fork and exec the command; return once exec succeeded, else raise StartFailed."""
    global _command_pid
    # The shim blocked the forwarded signals before forking us, so any that
    # arrived early are pending, not lost; they run _forward once unblocked.
    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, _forward)
    env = command_environment(config.env)
    exec_errors_r, exec_errors_w = os.pipe()  # close-on-exec: EOF means exec worked
    pid = os.fork()
    if pid == 0:
        _exec_command(config.command, env, exec_errors_w)
    _command_pid = pid
    os.close(exec_errors_w)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    with os.fdopen(exec_errors_r, "rb") as f:
        failure = f.read()
    if failure:
        os.waitpid(pid, 0)
        _command_pid = 0
        err = int(failure)
        code = EXIT_NOT_FOUND if err in (errno.ENOENT, errno.ENOTDIR) else EXIT_NOT_EXECUTABLE
        where = f" in rootfs {config.rootfs}" if config.rootfs else ""
        raise StartFailed(f"cannot run {config.command[0]!r}{where}: {os.strerror(err)}", code)


def _exec_command(command: list[str], env: dict[str, str], exec_errors_w: int) -> NoReturn:
    try:
        for signum in FORWARDED_SIGNALS + _IGNORED_BY_PYTHON:
            signal.signal(signum, signal.SIG_DFL)
        # Unblocking delivers signals forwarded during this setup: with their
        # default action, as if they had reached the command itself.
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.execvpe(command[0], command, env)
    except OSError as e:
        os.write(exec_errors_w, str(e.errno or errno.EINVAL).encode())
    except BaseException:
        os.write(exec_errors_w, str(errno.EINVAL).encode())
    os._exit(EXIT_NOT_FOUND)


def _supervise() -> int:
    """Reap children until the command exits; return its exit code (128+N for signal N)."""
    global _command_pid
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == _command_pid:
            _command_pid = 0
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def _describe(e: OSError) -> str:
    return f"{e.strerror}: {e.filename}" if e.filename else str(e.strerror)


def _report(report_fd: int, message: str, exit_code: int) -> None:
    os.write(report_fd, json.dumps({"error": message, "exit_code": exit_code}).encode())
    os.close(report_fd)
