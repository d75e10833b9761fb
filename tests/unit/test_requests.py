"""Repeatable changes (controller/store/requests.py): a request id recorded with
the change, so a repeat, even racing the first try on another controller,
gets the first result and never makes a second change."""
from __future__ import annotations

import asyncio
import json

import pytest

from controller.store import Store
from proto.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from proto.records import Host

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def with_host(store: Store) -> None:
    await store.register_host(Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001"))


async def test_a_repeated_run_returns_the_first_container_even_racing_on_two_controllers(etcd, prefix):
    first, second = Store(etcd, prefix, controller_id="c1"), Store(etcd, prefix, controller_id="c2")
    await with_host(first)
    made = await asyncio.gather(*(store.create_container("c1", "h1", ["true"], {}, "", ["none"],
                                                         request_id="run-c1-0001")
                                  for store in (first, second, first)))
    assert len({spec.id for spec in made}) == 1
    kv = await etcd.get(f"{prefix}requests/run-c1-0001")
    record = json.loads(kv.value)
    assert (record["method"], record["name"], record["container_id"]) == ("run", "c1", made[0].id)
    # Bounded: the record goes with a lease (of about RETENTION_SECONDS).
    assert kv.lease != 0
    # Control: without the id (or with another one), the same run is refused.
    with pytest.raises(AlreadyExists):
        await first.create_container("c1", "h1", ["true"], {}, "", ["none"])
    with pytest.raises(AlreadyExists):
        await first.create_container("c1", "h1", ["true"], {}, "", ["none"], request_id="run-c1-0002")
    # An id names one request: reused for another container, it is refused.
    with pytest.raises(InvalidArgument, match="was used for container 'c1'"):
        await first.create_container("c2", "h1", ["true"], {}, "", ["none"], request_id="run-c1-0001")
    with pytest.raises(InvalidArgument, match="invalid request id"):
        await first.create_container("c3", "h1", ["true"], {}, "", ["none"], request_id="no/slashes")


async def test_a_repeated_start_restarts_once_and_a_repeated_rm_succeeds(store, etcd, prefix):
    await with_host(store)
    spec = await store.create_container("c1", "h1", ["true"], {}, "", ["none"])
    once = await store.set_desired("c1", "running", bump_generation=True, request_id="start-c1-01")
    again = await store.set_desired("c1", "running", bump_generation=True, request_id="start-c1-01")
    assert once.generation == again.generation == spec.generation + 1
    # Control: without the id, a repeat restarts it again.
    assert (await store.set_desired("c1", "running", bump_generation=True)).generation == spec.generation + 2

    await store.delete_container("c1", "rm-c1-0001")
    assert await store.delete_container("c1", "rm-c1-0001") is None
    assert (await store.request_done("rm-c1-0001")).container_id == spec.id
    with pytest.raises(NotFound):
        await store.delete_container("c1", "rm-c1-0002")
    # The run's request outlives its container, and says so.
    with pytest.raises(FailedPrecondition, match="removed since"):
        await store.made_by(await store.request_done("start-c1-01"), "c1")
