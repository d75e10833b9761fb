"""The controller's state cache against a real etcd: a restarted controller
rebuilds its replay history from etcd's, so agents can resume with a delta."""
from __future__ import annotations

import pytest

from controller.cache import StateCache
from controller.keys import Keys
from proto.records import Host

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_new_cache_can_replay_what_happened_before_it_started(store, etcd, prefix):
    await store.register_host(Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001"))
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_container("c1", "h1", ["true"], {}, "", ["blue"])
    agent_revision = await etcd.revision()          # what an agent had applied
    await store.create_container("c2", "h1", ["true"], {}, "", ["blue"])
    await store.delete_container("c1")

    cache = StateCache(etcd, Keys(prefix))          # a controller (re)starting now
    await cache.start()
    try:
        now = await etcd.revision()
        assert await cache.wait_until(lambda: cache.revision >= now, 10)
        batches = cache.batches_since(agent_revision)
        assert batches is not None, "the restarted cache cannot resume an agent from before its start"
        keys = [ev.key for _, events in batches for ev in events]
        assert Keys(prefix).container("c2") in keys and Keys(prefix).container("c1") in keys
        assert sorted(cache.index.containers_on("h1")) == [Keys(prefix).container("c2")]
    finally:
        await cache.stop()


async def test_without_preload_an_old_revision_needs_a_snapshot(store, etcd, prefix):
    await store.create_network("blue", "10.77.0.0/24")
    old = await etcd.revision()
    await store.create_network("red", "10.78.0.0/24")
    cache = StateCache(etcd, Keys(prefix), preload=0)
    await cache.start()
    try:
        assert cache.batches_since(old) is None
    finally:
        await cache.stop()
