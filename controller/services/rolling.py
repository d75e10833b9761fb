"""Rolling updates: which tasks of an older template go next. Pure functions.

After `service update` changed the template (its version went up and its
update_state is "updating"), the reconciler asks `rollout` in each pass in
which `scheduling.plan` had nothing to do for the service:

- a task of the new version that failed (ended with an error or a non-zero
  exit) pauses the rollout: the tasks still on the old version stay;
- while a task of the new version is not running yet, the batch is in flight;
- `update_delay` seconds after the last batch was created, the next
  `update_parallelism` tasks of older versions (lowest slots first) are
  replaced, in their slots, on the hosts `scheduling` would pick;
- with no older task left, the rollout is complete.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from controller.services.scheduling import Start, TaskView, place_tasks
from proto.records import ServiceSpec

UPDATING, COMPLETED, PAUSED = "updating", "completed", "paused"


@dataclass(frozen=True)
class Rollout:
    remove: tuple[str, ...] = ()
    start: tuple[Start, ...] = ()
    state: str = ""             # the update state to record ("": unchanged)
    message: str = ""
    wake_at: float | None = None


def rollout(service: ServiceSpec, tasks: list[TaskView], eligible: Collection[str], now: float,
            load: Mapping[str, int] | None = None) -> Rollout:
    if service.update_state != UPDATING:
        return Rollout()
    fresh = [t for t in tasks if t.version == service.version]
    old = sorted((t for t in tasks if t.version != service.version), key=lambda t: (t.slot, t.host))
    failed = next((t for t in fresh if t.ended and t.failed), None)
    if failed is not None:
        why = failed.error or f"exit code {failed.exit_code}"
        return Rollout(state=PAUSED, message=f"task {failed.name} of the new version failed: {why}")
    if any(t.state != "running" for t in fresh):
        return Rollout()                                  # the batch is still starting
    if not old:
        return Rollout(state=COMPLETED, message="")
    due = max((t.since for t in fresh), default=0.0) + service.update_delay
    if now < due:
        return Rollout(wake_at=due)
    batch = old[:max(1, service.update_parallelism)]
    going = {t.name for t in batch}
    survivors = [t for t in tasks if t.name not in going]
    wanted = [(t.slot, "" if service.mode == "replicated" else t.host, 0) for t in batch]
    starts, _ = place_tasks(wanted, survivors, eligible, load or {})
    return Rollout(remove=tuple(sorted(going)), start=tuple(starts))
