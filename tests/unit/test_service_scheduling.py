"""The scheduling rules of services (controller/services/scheduling.py), over any cluster.

Property tests: whatever tasks exist, on whatever hosts, alive or dead, the
plan leaves exactly one task per place, never places one on a dead or
ineligible host, spreads new tasks, and refills ended ones per the restart
condition and back-off. `apply` plays a plan out the way the reconciler does.
"""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.services import constraints
from controller.services.scheduling import MAX_BACKOFF, TaskView, backoff, plan
from proto.errors import InvalidArgument
from proto.records import ServiceSpec

HOSTS = ["h1", "h2", "h3", "h4", "h5"]
NOW = 1000.0


def service(**fields) -> ServiceSpec:
    return ServiceSpec(name="web", id="s1", **fields)


def apply(tasks: list[TaskView], changes) -> list[TaskView]:
    """The tasks after a plan: removed ones gone, started ones created (not yet running)."""
    gone = set(changes.remove)
    kept = [t for t in tasks if t.name not in gone]
    new = [TaskView(f"web.{s.slot}.{s.host}.{i}", s.slot, s.host, restarts=s.restarts)
           for i, s in enumerate(changes.start)]
    return kept + new


def running(slot: int, host: str, name: str = "") -> TaskView:
    return TaskView(name or f"web.{slot}.{host}", slot, host, state="running")


task_states = st.sampled_from(["created", "running", "exited"])
tasks_strategy = st.lists(
    st.builds(lambda slot, host, state, code, n: TaskView(f"t{n}-{slot}-{host}", slot, host, state, code,
                                                          since=NOW - 100),
              st.integers(1, 8), st.sampled_from(HOSTS), task_states, st.sampled_from([0, 1]), st.integers(0, 10**6)),
    max_size=12, unique_by=lambda t: t.name)


@settings(max_examples=300, deadline=None)
@given(replicas=st.integers(0, 8), tasks=tasks_strategy,
       live=st.sets(st.sampled_from(HOSTS), min_size=1), dead=st.sets(st.sampled_from(HOSTS)),
       condition=st.sampled_from(["any", "on-failure", "none"]))
def test_a_replicated_plan_leaves_one_task_per_slot_on_live_hosts(replicas, tasks, live, dead, condition):
    dead = dead - live
    spec = service(replicas=replicas, restart_condition=condition, restart_delay=1.0)
    changes = plan(spec, tasks, sorted(live), dead, NOW)
    after = apply(tasks, changes)
    slots = Counter(t.slot for t in after)
    assert set(slots) == set(range(1, replicas + 1))
    assert all(count == 1 for count in slots.values())
    assert not any(t.host in dead for t in after)
    assert all(s.host in live for s in changes.start)
    # A second plan right after changes nothing that the first already did.
    again = plan(spec, after, sorted(live), dead, NOW)
    assert not again.start and not again.remove


@settings(max_examples=200, deadline=None)
@given(replicas=st.integers(1, 20), live=st.sets(st.sampled_from(HOSTS), min_size=1),
       load=st.dictionaries(st.sampled_from(HOSTS), st.integers(0, 50)))
def test_new_tasks_spread_evenly_over_the_live_hosts(replicas, live, load):
    changes = plan(service(replicas=replicas), [], sorted(live), set(), NOW, load)
    per_host = Counter(s.host for s in changes.start)
    counts = [per_host[h] for h in live]
    assert sum(counts) == replicas
    assert max(counts) - min(counts) <= 1


@settings(max_examples=200, deadline=None)
@given(replicas=st.integers(1, 9), hosts=st.integers(2, 5), lost=st.integers(0, 4))
def test_the_tasks_of_a_dead_host_move_to_the_live_hosts_with_fewest(replicas, hosts, lost):
    names = HOSTS[:hosts]
    first = apply([], plan(service(replicas=replicas), [], names, set(), NOW))
    first = [TaskView(t.name, t.slot, t.host, state="running") for t in first]
    dead = {names[lost % hosts]}
    live = [h for h in names if h not in dead]
    changes = plan(service(replicas=replicas), first, live, dead, NOW)
    assert set(changes.remove) == {t.name for t in first if t.host in dead}
    after = apply(first, changes)
    per_host = Counter(t.host for t in after)
    assert sum(per_host.values()) == replicas
    assert max(per_host[h] for h in live) - min(per_host[h] for h in live) <= 1
    # Tasks on live hosts stay where they are: a host's death moves only its own tasks.
    assert {t.name for t in first if t.host not in dead} <= {t.name for t in after}


def test_a_host_missing_inside_the_grace_keeps_its_tasks_and_gets_no_new_one():
    tasks = [running(1, "h1"), running(2, "h2")]
    changes = plan(service(replicas=3), tasks, ["h1"], set(), NOW)   # h2 neither live nor dead
    assert changes.remove == ()
    assert [(s.slot, s.host) for s in changes.start] == [(3, "h1")]


@pytest.mark.parametrize("condition, exit_code, refilled", [
    ("any", 0, True), ("any", 1, True), ("on-failure", 0, False), ("on-failure", 137, True),
    ("none", 1, False),
])
def test_an_ended_task_is_refilled_per_the_restart_condition(condition, exit_code, refilled):
    ended = TaskView("web.1.a", 1, "h1", state="exited", exit_code=exit_code, since=NOW - 60)
    changes = plan(service(replicas=1, restart_condition=condition), [ended], ["h1", "h2"], set(), NOW)
    assert (changes.remove == ("web.1.a",)) == refilled
    assert [(s.slot, s.restarts) for s in changes.start] == ([(1, 1)] if refilled else [])


def test_a_failed_start_counts_as_a_failure():
    failed = TaskView("web.1.a", 1, "h1", state="created", error="no such image", since=NOW - 60)
    changes = plan(service(restart_condition="on-failure"), [failed], ["h1"], set(), NOW)
    assert changes.remove == ("web.1.a",) and changes.start[0].restarts == 1


def test_the_refill_waits_for_a_back_off_that_doubles():
    spec = service(restart_delay=2.0)
    ended = TaskView("web.1.a", 1, "h1", state="exited", exit_code=1, since=NOW, restarts=3)
    waiting = plan(spec, [ended], ["h1"], set(), NOW + 15)
    assert waiting.start == () and waiting.remove == () and waiting.wake_at == NOW + 16
    due = plan(spec, [ended], ["h1"], set(), NOW + 16)
    assert due.remove == ("web.1.a",) and due.start[0].restarts == 4
    assert [backoff(2.0, n) for n in range(6)] == [2, 4, 8, 16, MAX_BACKOFF, MAX_BACKOFF]


def test_max_attempts_stops_the_refills():
    spec = service(restart_max_attempts=2)
    ended = TaskView("web.1.a", 1, "h1", state="exited", exit_code=1, since=0, restarts=2)
    assert plan(spec, [ended], ["h1"], set(), NOW) == plan(spec, [ended], ["h1"], set(), NOW + 10**6)
    assert plan(spec, [ended], ["h1"], set(), NOW).start == ()


def test_scaling_down_removes_the_highest_slots():
    tasks = [running(slot, HOSTS[slot % 3]) for slot in range(1, 6)]
    changes = plan(service(replicas=2), tasks, HOSTS[:3], set(), NOW)
    assert sorted(changes.remove) == sorted(t.name for t in tasks if t.slot > 2)
    assert changes.start == ()


def test_two_tasks_in_one_slot_keep_one():
    changes = plan(service(replicas=1), [running(1, "h1", "a"), running(1, "h2", "b")], ["h1", "h2"], set(), NOW)
    assert changes.remove == ("b",) and changes.start == ()


def test_no_live_host_leaves_tasks_unplaced():
    changes = plan(service(replicas=3), [], [], set(), NOW)
    assert changes.start == () and changes.unplaced == 3


@settings(max_examples=200, deadline=None)
@given(live=st.sets(st.sampled_from(HOSTS), min_size=1), dead=st.sets(st.sampled_from(HOSTS)),
       tasks=tasks_strategy)
def test_a_global_service_runs_one_task_per_eligible_live_host(live, dead, tasks):
    dead = dead - live
    tasks = [TaskView(t.name, 0, t.host, t.state, t.exit_code, since=t.since) for t in tasks]
    spec = service(mode="global", replicas=0, restart_condition="none")
    after = apply(tasks, plan(spec, tasks, sorted(live), dead, NOW))
    per_host = Counter(t.host for t in after)
    # One per live host; a host neither live nor dead (inside the grace) keeps what it had, at most one.
    assert all(per_host[h] == 1 for h in live)
    assert not any(h in dead for h in per_host)
    assert all(count == 1 for count in per_host.values())


def test_constraints_choose_the_hosts():
    assert [h for h in HOSTS if constraints.allows(["node.hostname==h2"], h)] == ["h2"]
    assert [h for h in HOSTS if constraints.allows(["node.hostname!=h2", "host!=h3"], h)] == ["h1", "h4", "h5"]
    with pytest.raises(InvalidArgument, match="node.hostname==NAME"):
        constraints.parse("node.role==manager")
