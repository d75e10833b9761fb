"""Starting, waiting for, recognising and killing the lab's processes."""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from agent.oci import processes
from deploy.lab_errors import LabError
from deploy.topology import Node, sigkill

REPO_ROOT = Path(__file__).resolve().parents[1]
POLL_INTERVAL = 0.2


@dataclass
class ProcessRecord:
    role: str          # "controller", "agent-<host>", "ext"
    netns: str
    argv: list[str]
    log: str
    pid: int
    # Kernel start time of the pid: a fresh `lab down` must not kill an
    # unrelated process that later reused the number.
    start_ticks: int


def is_alive(record: ProcessRecord) -> bool:
    """That very process still runs (a zombie, exited and only waiting to be reaped, does not)."""
    return processes.is_alive(record.pid, record.start_ticks)


def log_tail(log: Path | str, lines: int = 30) -> str:
    try:
        text = Path(log).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """The lab's processes by role, with their logs; `on_change` persists them."""

    def __init__(self, log_dir: Path, records: dict[str, ProcessRecord],
                 on_change: Callable[[], None]) -> None:
        self.log_dir = log_dir
        self.records = records
        self._on_change = on_change
        self._popens: dict[str, subprocess.Popen] = {}  # only those this process started

    def log_path(self, role: str) -> Path:
        """Where `role`'s output goes (appended to across restarts)."""
        return self.log_dir / f"{role}.log"

    def spawn(self, role: str, netns: str, argv: list[str]) -> ProcessRecord:
        log = self.log_path(role)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as log_file:
            log_file.write(f"=== {time.strftime('%H:%M:%S')} starting {' '.join(argv)}\n".encode())
            log_file.flush()
            # Only the network namespace is entered (Node.argv says why). A new
            # session keeps it alive after `lab up` exits and out of reach of
            # the terminal's Ctrl-C.
            popen = subprocess.Popen(
                Node(netns).argv(*argv),
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                cwd=REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        started = processes.start_time(popen.pid)
        if started is None:
            popen.wait()
            raise LabError(f"{role} exited at once (exit {popen.returncode}); log {log}:\n{log_tail(log)}")
        self.records[role] = ProcessRecord(role, netns, argv, str(log), popen.pid, started)
        self._popens[role] = popen
        self._on_change()
        return self.records[role]

    def wait_until(self, what: str, not_ready: Callable[[], str | None], roles: list[str],
                   timeout: float) -> None:
        """Poll until `not_ready()` has no reason left to give; fail early,
        with its log, if a process in `roles` died meanwhile."""
        roles = [r for r in roles if r in self.records]
        deadline = time.monotonic() + timeout
        while (reason := not_ready()) is not None:
            for role in roles:
                record = self.records[role]
                if not is_alive(record):
                    raise LabError(f"{role} (pid {record.pid}) died while waiting for {what}; "
                                   f"log {record.log}:\n{log_tail(record.log)}")
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {r} ({self.records[r].log}):\n{log_tail(self.records[r].log)}"
                                  for r in roles)
                raise LabError(f"timed out after {timeout}s waiting for {what} ({reason})\n{tails}")
            time.sleep(POLL_INTERVAL)

    def stop(self, role: str, netns: str, whole_namespace: bool = True) -> None:
        """kill -9 `role`, and (`whole_namespace`) everything else in its namespace."""
        record = self.records.get(role)
        if record is not None and is_alive(record):
            sigkill(record.pid)
        if whole_namespace:
            Node(netns).kill_processes()
        self._reap(role)

    def kill_all(self) -> None:
        """kill -9 every recorded process, also one that left its namespace
        (the rest of what runs in the lab's namespaces is Topology.remove's)."""
        for record in self.records.values():
            if is_alive(record):
                sigkill(record.pid)
        for role in list(self._popens):
            self._reap(role)
        self.records.clear()

    def _reap(self, role: str) -> None:
        popen = self._popens.pop(role, None)
        if popen is None:
            return
        try:
            popen.wait(timeout=5)
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{role} (pid {popen.pid}) did not die after SIGKILL") from exc
