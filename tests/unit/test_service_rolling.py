"""Rolling updates (controller/services/rolling.py), pure."""
from __future__ import annotations

from controller.services.rolling import COMPLETED, PAUSED, UPDATING, rollout
from controller.services.scheduling import TaskView
from proto.records import ServiceSpec

NOW = 1000.0


def web(**fields) -> ServiceSpec:
    fields.setdefault("update_state", UPDATING)
    return ServiceSpec(name="web", id="s", replicas=4, version=2, **fields)


def task(slot: int, version: int, state: str = "running", **fields) -> TaskView:
    return TaskView(f"web.{slot}.v{version}", slot, f"h{slot % 2}", state=state, version=version,
                    since=fields.pop("since", NOW - 100), **fields)


def test_batches_of_parallelism_lowest_slots_first_in_their_slots():
    tasks = [task(s, 1) for s in (1, 2, 3, 4)]
    step = rollout(web(update_parallelism=2), tasks, ["h0", "h1"], NOW)
    assert step.remove == ("web.1.v1", "web.2.v1")
    assert sorted(s.slot for s in step.start) == [1, 2] and not step.state


def test_the_next_batch_waits_for_the_last_to_run_and_the_delay():
    tasks = [task(1, 2, "created"), task(2, 1), task(3, 1)]
    in_flight = rollout(web(), tasks, ["h0", "h1"], NOW)
    assert (in_flight.remove, in_flight.start, in_flight.state) == ((), (), "")
    tasks = [task(1, 2, since=NOW - 1), task(2, 1), task(3, 1)]
    waiting = rollout(web(update_delay=5.0), tasks, ["h0", "h1"], NOW)
    assert waiting.remove == () and waiting.wake_at == NOW + 4
    assert rollout(web(update_delay=5.0), tasks, ["h0", "h1"], NOW + 4).remove == ("web.2.v1",)


def test_a_failed_new_task_pauses_and_nothing_more_is_replaced():
    tasks = [task(1, 2, "exited", exit_code=1), task(2, 1), task(3, 1)]
    step = rollout(web(), tasks, ["h0", "h1"], NOW)
    assert step.state == PAUSED and "web.1.v2" in step.message and "exit code 1" in step.message
    assert step.remove == () and step.start == ()
    assert rollout(web(update_state=PAUSED), tasks, ["h0", "h1"], NOW).remove == ()


def test_done_when_no_old_task_is_left():
    assert rollout(web(), [task(s, 2) for s in (1, 2)], ["h0"], NOW).state == COMPLETED
