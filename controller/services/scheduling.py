"""What a service needs now: which tasks go, which start where. Pure functions.

The reconciler (reconciler.py) reads the service, its tasks and the hosts,
asks `plan`, and writes the answer under its fence. Everything here is
deterministic in its inputs, so the property tests (tests/unit/
test_service_scheduling.py) can check the rules over any cluster:

- a replicated service has exactly one task per slot 1..replicas; a global
  one exactly one task per eligible live host;
- a new task goes to the eligible live host with the fewest tasks of this
  service, then the fewest containers, then by name (spread);
- the tasks of a dead host are removed and their slots refilled on live
  ones; a host that is only missing for a moment (inside the reconciler's
  grace) keeps its tasks and gets no new one;
- an ended task (or one its health check calls unhealthy) is refilled per
  the restart condition ("any", "on-failure": a non-zero exit, a failed
  start or a failed health check, "none"), at most `restart_max_attempts`
  times (0: no limit), each time after a back-off that doubles from
  `restart_delay` up to MAX_BACKOFF seconds.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from proto.records import ServiceSpec

MAX_BACKOFF = 30.0
RESTART_CONDITIONS = ("any", "on-failure", "none")
MODES = ("replicated", "global")


@dataclass(frozen=True)
class TaskView:
    """One task as the scheduler sees it: its container and its last report."""
    name: str
    slot: int
    host: str
    state: str = "created"     # created, running, exited (the agent's words)
    exit_code: int = 0
    error: str = ""
    since: float = 0.0         # when it ended (or was created, for a start that failed)
    restarts: int = 0
    version: int = 0           # of the service's template it runs
    unhealthy: bool = False    # its health check failed: replaced like a task that ended

    @property
    def ended(self) -> bool:
        return self.state == "exited" or self.unhealthy or (self.state != "running" and bool(self.error))

    @property
    def failed(self) -> bool:
        return bool(self.error) or self.exit_code != 0


@dataclass(frozen=True)
class Start:
    slot: int
    host: str
    restarts: int = 0


@dataclass(frozen=True)
class Plan:
    remove: tuple[str, ...] = ()
    start: tuple[Start, ...] = ()
    wake_at: float | None = None     # the earliest back-off that ends later: plan again then
    unplaced: int = 0                # tasks wanted that no eligible live host can take


def backoff(delay: float, restarts: int) -> float:
    """Seconds to wait before the refill after `restarts` refills already."""
    return min(delay * (2 ** min(restarts, 16)), MAX_BACKOFF)


def plan(service: ServiceSpec, tasks: Iterable[TaskView], eligible: Collection[str],
         dead: Collection[str], now: float, load: Mapping[str, int] | None = None) -> Plan:
    """The changes that bring `service` to what it asks for. `eligible`: the live
    hosts its constraints allow; `dead`: hosts declared dead (their tasks go);
    `load`: containers per host, to break ties."""
    tasks = sorted(tasks, key=lambda t: (t.slot, t.host, t.name))
    remove: list[str] = []
    refill: list[tuple[int, str, int]] = []   # (slot, host wanted or "", restarts)
    wake: list[float] = []
    kept: list[TaskView] = []

    for task in tasks:
        if task.host in dead:
            remove.append(task.name)          # its slot is refilled below, on a live host
        else:
            kept.append(task)

    places = _places(service, kept, eligible)
    seen: set[object] = set()
    survivors: list[TaskView] = []
    for task in kept:
        place = task.slot if service.mode == "replicated" else task.host
        if place not in places or place in seen:
            remove.append(task.name)          # scaled away, or a second task in one place
            continue
        seen.add(place)
        if task.ended and _restarts(service, task):
            due = task.since + backoff(service.restart_delay, task.restarts)
            if now >= due:
                remove.append(task.name)
                refill.append((task.slot, "" if service.mode == "replicated" else task.host, task.restarts + 1))
                continue
            wake.append(due)
        survivors.append(task)

    carried = {t.slot: t.restarts for t in tasks if t.host in dead}
    for place in sorted(places - seen, key=str):
        if service.mode == "replicated":
            refill.append((int(place), "", carried.get(int(place), 0)))
        else:
            refill.append((0, str(place), 0))

    starts, unplaced = place_tasks(sorted(refill), survivors, eligible, load or {})
    return Plan(tuple(remove), tuple(starts), min(wake) if wake else None, unplaced)


def _places(service: ServiceSpec, kept: list[TaskView], eligible: Collection[str]) -> set[object]:
    """The slots (replicated) or hosts (global) that should each hold one task."""
    if service.mode == "replicated":
        return set(range(1, service.replicas + 1))
    # A global task on a host missing only for a moment keeps its place.
    return set(eligible) | {t.host for t in kept if t.host not in eligible}


def _restarts(service: ServiceSpec, task: TaskView) -> bool:
    """Whether an ended task's place is refilled at all."""
    condition = service.restart_condition
    if condition == "none" or (condition == "on-failure" and not task.failed):
        return False
    return not service.restart_max_attempts or task.restarts < service.restart_max_attempts


def place_tasks(refill: list[tuple[int, str, int]], survivors: list[TaskView], eligible: Collection[str],
          load: Mapping[str, int]) -> tuple[list[Start], int]:
    """Hosts for (slot, host or "", restarts): a global task's host is given; a replicated
    one goes where this service has the fewest tasks (then containers, then name)."""
    counts = Counter(t.host for t in survivors)
    starts, unplaced = [], 0
    for slot, host, restarts in refill:
        if host:                     # global: the place is the host
            if host in eligible:
                starts.append(Start(slot, host, restarts))
            else:
                unplaced += 1
            continue
        if not eligible:
            unplaced += 1
            continue
        chosen = min(eligible, key=lambda h: (counts[h], load.get(h, 0), h))
        counts[chosen] += 1
        starts.append(Start(slot, chosen, restarts))
    return starts, unplaced
