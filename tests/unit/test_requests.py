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


async def test_a_repeated_network_create_returns_the_first_network_even_racing(etcd, prefix):
    first, second = Store(etcd, prefix, controller_id="c1"), Store(etcd, prefix, controller_id="c2")
    made = await asyncio.gather(*(store.create_network("red", "10.88.0.0/24", request_id="net-red-0001")
                                  for store in (first, second, first)))
    assert len({network.id for network in made}) == 1
    # Recorded in the change's own transaction: the same revision as the network.
    request = await etcd.get(f"{prefix}requests/net-red-0001")
    network = await etcd.get(f"{prefix}networks/red")
    assert request.mod_revision == network.mod_revision and request.lease != 0
    record = json.loads(request.value)
    assert (record["method"], record["name"], record["network_id"]) == ("network create", "red", made[0].id)
    # Control: without the id (or with another one) the repeat is refused.
    with pytest.raises(AlreadyExists, match="network 'red' already exists"):
        await first.create_network("red", "10.88.0.0/24")
    with pytest.raises(AlreadyExists):
        await first.create_network("red", "10.88.0.0/24", request_id="net-red-0002")
    # An id names one request.
    with pytest.raises(InvalidArgument, match="was used for `network create red`, not `network create blue`"):
        await first.create_network("blue", "10.89.0.0/24", request_id="net-red-0001")

    await first.remove_network("red", request_id="net-red-rm01")
    assert await second.remove_network("red", request_id="net-red-rm01") is None   # the first's result
    assert (await first.request_done("net-red-rm01")).network_id == made[0].id
    with pytest.raises(NotFound):   # control: without the id, the network is gone
        await first.remove_network("red")
    with pytest.raises(InvalidArgument, match="was used for `network rm red`"):
        await first.remove_network("blue", request_id="net-red-rm01")
    # The create's request outlives its network, and says so.
    with pytest.raises(FailedPrecondition, match="created network 'red', which has been removed since"):
        await first.create_network("red", "10.88.0.0/24", request_id="net-red-0001")


async def test_a_repeated_connect_or_disconnect_changes_nothing_more(store, etcd, prefix):
    await with_host(store)
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_network("red", "10.88.0.0/24")
    spec = await store.create_container("c1", "h1", ["true"], {}, "", ["blue"])
    once, again = await asyncio.gather(store.connect("c1", "red", request_id="conn-c1-red1"),
                                       store.connect("c1", "red", request_id="conn-c1-red1"))
    assert once.networks == again.networks == ["blue", "red"]
    assert once.attachments[1].ip == again.attachments[1].ip
    kv, request = await etcd.get(f"{prefix}containers/c1"), await etcd.get(f"{prefix}requests/conn-c1-red1")
    assert kv.mod_revision == request.mod_revision
    assert json.loads(request.value)["network"] == "red" and json.loads(request.value)["container_id"] == spec.id
    # Control: without the id, the repeat is the user's "already connected".
    with pytest.raises(AlreadyExists, match="already connected to network 'red'"):
        await store.connect("c1", "red")
    with pytest.raises(InvalidArgument, match="was used for `network connect c1` on network 'red'"):
        await store.disconnect("c1", "red", request_id="conn-c1-red1")

    left = await store.disconnect("c1", "red", request_id="disc-c1-red1")
    assert (await store.disconnect("c1", "red", request_id="disc-c1-red1")).networks == left.networks == ["blue"]
    with pytest.raises(NotFound, match="not connected to network 'red'"):
        await store.disconnect("c1", "red")
    # The address it held is free: a connect with a new id takes it again.
    assert (await store.connect("c1", "red", request_id="conn-c1-red2")).attachments[1].ip == once.attachments[1].ip
