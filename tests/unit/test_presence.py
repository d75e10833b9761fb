"""Controllers announce themselves in etcd for the agents' guards (against a real etcd)."""
from __future__ import annotations

import asyncio

import pytest

from controller import presence as presence_module
from controller.presence import Presence
from controller.store import Store
from proto.records import ControllerInfo

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def records(store: Store) -> dict[str, ControllerInfo]:
    kvs, _ = await store.etcd.get_prefix(store.keys.controllers())
    return {kv.key: ControllerInfo.from_json(kv.value) for kv in kvs}


async def test_a_controller_announces_where_it_listens_and_the_etcd_it_uses(store, etcd_server):
    presence = Presence(store.controllers, store.etcd, "ctl-1",
                        ["192.0.2.2:7946", "unix:///run/vxmesh/c.sock", "localhost:8946"],
                        [etcd_server.endpoint], ttl=2)
    record = await presence.record()
    # The unix socket is no one's to reach over the network; a name is resolved here.
    assert "127.0.0.1:8946" in record.listen and "192.0.2.2:7946" in record.listen
    assert "unix" not in str(record.listen)
    host, port = etcd_server.endpoint.removeprefix("http://").rsplit(":", 1)
    assert record.etcd_client == [f"{host}:{port}"]           # from etcd's member list
    assert len(record.etcd_peer) == 1 and record.etcd_peer[0].startswith("127.0.0.1:")

    task = asyncio.create_task(presence.run())
    try:
        for _ in range(50):
            if await records(store):
                break
            await asyncio.sleep(0.1)
        assert await records(store) == {store.keys.controller("ctl-1"): record}
        # Renewed past its TTL: the record stays while the controller runs.
        await asyncio.sleep(3)
        assert store.keys.controller("ctl-1") in await records(store)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await presence.withdraw()
    assert await records(store) == {}


async def test_a_lost_lease_is_announced_again(store, etcd_server, monkeypatch):
    monkeypatch.setattr(presence_module, "REFRESH_SECONDS", 0.1)
    presence = Presence(store.controllers, store.etcd, "ctl-2", ["192.0.2.3:7946"], [etcd_server.endpoint],
                        ttl=1)
    task = asyncio.create_task(presence.run())
    try:
        for _ in range(50):
            if presence.lease:
                break
            await asyncio.sleep(0.1)
        first = presence.lease
        await store.etcd.revoke(first)     # as if etcd had expired it
        for _ in range(50):
            if presence.lease not in (0, first) and await records(store):
                break
            await asyncio.sleep(0.1)
        assert presence.lease not in (0, first)
        assert list(await records(store)) == [store.keys.controller("ctl-2")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await presence.withdraw()


async def test_an_unspecified_listen_address_stands_for_each_address_of_the_host(store, monkeypatch):
    monkeypatch.setattr(presence_module, "_local_addresses", lambda: ["127.0.0.1", "192.0.2.9", "::1"])
    presence = Presence(store.controllers, store.etcd, "ctl-3", ["0.0.0.0:7946", "[::]:7947"], [], ttl=2)
    record = await presence.record()
    assert record.listen == ["127.0.0.1:7946", "127.0.0.1:7947", "192.0.2.9:7946", "192.0.2.9:7947",
                             "[::1]:7947"]
