"""Every agent's liveness key under one lease of its controller's
(controller/agent_leases.py), against a real etcd:

- one renewal per period however many agents are connected;
- a host whose heartbeats stop loses its key `ttl` after the last one, one
  that beats keeps it; a stream that ends keeps its key that long too, and an
  agent back within it (here or at another controller) keeps the new one;
- the controller gone (its lease no longer renewed), every key goes;
- the lease found expired, every key is written again under a new one;
- the lease failing to renew, every stream is told to end;
- a sweep after the controller's loop stalled judges nobody.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from controller import agent_leases
from controller.agent_leases import AgentLeases
from controller.store import Store
from proto.errors import Unavailable
from proto.records import Reachability

pytestmark = pytest.mark.asyncio(loop_scope="module")

TTL = 2
SWEEP = 0.2


async def agent_keys(store: Store) -> dict[str, int]:
    """host -> the lease its agents/ key is bound to."""
    kvs, _ = await store.etcd.get_prefix(store.keys.agents_all())
    return {store.keys.parse(kv.key)[1][0]: kv.lease for kv in kvs}


async def reach_keys(store: Store) -> set[str]:
    kvs, _ = await store.etcd.get_prefix(store.keys.reach_all(), keys_only=True)
    return {store.keys.parse(kv.key)[1][0] for kv in kvs}


async def beat_for(leases: AgentLeases, holdings, seconds: float) -> None:
    """The agents' heartbeats, every SWEEP seconds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for holding in holdings:
            assert leases.beat(holding)
        await asyncio.sleep(SWEEP)


async def test_one_lease_and_one_renewal_per_period_for_any_number_of_agents(store, monkeypatch):
    renewals = []
    real = store.keep_alive

    async def counted(lease: int) -> bool:
        renewals.append(lease)
        return await real(lease)
    monkeypatch.setattr(store, "keep_alive", counted)
    leases = AgentLeases(store, TTL, sweep=SWEEP)
    try:
        few = [await leases.attach(f"few{i}") for i in range(2)]
        await beat_for(leases, few, 2.5)
        with_few = len(renewals)
        many = few + [await leases.attach(f"many{i}") for i in range(40)]
        renewals.clear()
        await beat_for(leases, many, 2.5)
        # Each period renews the one lease, however many agents: the count does not follow them.
        assert 0 < len(renewals) <= with_few + 1
        assert set(renewals) == {leases.lease}
        keys = await agent_keys(store)
        assert len(keys) == 42 and set(keys.values()) == {leases.lease}
    finally:
        await leases.close()


async def test_a_silent_agent_loses_its_key_after_the_ttl_and_a_beating_one_keeps_it(store):
    leases = AgentLeases(store, TTL, sweep=SWEEP)
    try:
        beating, silent = await leases.attach("beating"), await leases.attach("silent")
        await leases.put_reach(silent, Reachability("silent", ["beating"], []))
        started = time.monotonic()
        await beat_for(leases, [beating], TTL - 0.5)
        assert set(await agent_keys(store)) == {"beating", "silent"}   # not before the TTL
        while "silent" in await agent_keys(store):
            assert time.monotonic() - started < TTL + 2, "the silent agent's key stayed"
            await beat_for(leases, [beating], SWEEP)
        assert time.monotonic() - started >= TTL
        assert set(await agent_keys(store)) == {"beating"}
        assert await reach_keys(store) == set()      # its report went with it
        # It beats again: its key comes back (the stream's reader does this).
        assert leases.beat(silent) is False
        await leases.remark(silent)
        assert set(await agent_keys(store)) == {"beating", "silent"}
        assert await reach_keys(store) == {"silent"}
    finally:
        await leases.close()


async def test_an_ended_stream_keeps_its_key_for_the_ttl_and_a_reconnection_keeps_the_new_one(store, etcd, prefix):
    here = AgentLeases(store, TTL, sweep=SWEEP)
    there = AgentLeases(Store(etcd, prefix, controller_id="other"), TTL, sweep=SWEEP)
    try:
        gone, moved, back = [await here.attach(name) for name in ("gone", "moved", "back")]
        for holding in (gone, moved, back):
            here.detach(holding)        # three streams end at once
        await asyncio.sleep(TTL - 0.7)
        assert set(await agent_keys(store)) == {"gone", "moved", "back"}
        # Within the TTL, one agent connects to another controller, one to this one again.
        await there.attach("moved")
        back_again = await here.attach("back")
        await beat_for(here, [back_again], 1.5)
        keys = await agent_keys(store)
        # The control: the one that did not come back went.
        assert set(keys) == {"moved", "back"}
        assert keys["moved"] == there.lease and keys["back"] == here.lease != there.lease
    finally:
        await here.close()
        await there.close()


async def test_every_key_goes_with_a_controller_that_stops_renewing(store):
    leases = AgentLeases(store, TTL, sweep=SWEEP)
    holdings = [await leases.attach(f"h{i}") for i in range(5)]
    await beat_for(leases, holdings, 0.5)
    await leases.close()                 # as the process dying: nothing more is renewed or deleted
    assert len(await agent_keys(store)) == 5
    started = time.monotonic()
    while await agent_keys(store):
        assert time.monotonic() - started < TTL + 3, "the keys outlived their controller's lease"
        await asyncio.sleep(0.2)


async def test_an_expired_lease_is_replaced_and_every_key_written_again(store, monkeypatch):
    leases = AgentLeases(store, TTL, sweep=SWEEP)
    try:
        holdings = [await leases.attach(f"x{i}") for i in range(60)]
        await leases.put_reach(holdings[0], Reachability("x0", ["x1"], []))
        first = leases.lease
        one_by_one, batches = [], []
        monkeypatch.setattr(store, "mark_connected", lambda *a: one_by_one.append(a))
        real_many = store.mark_connected_many

        async def many(marks, lease):
            batches.append(len(marks))
            return await real_many(marks, lease)
        monkeypatch.setattr(store, "mark_connected_many", many)
        await store.etcd.revoke(first)    # as an expiry while the controller's loop was stalled
        assert await agent_keys(store) == {}
        started = time.monotonic()
        while len(await agent_keys(store)) < 60:
            assert time.monotonic() - started < TTL, "the keys were not written again"
            await beat_for(leases, holdings, SWEEP)
        assert set((await agent_keys(store)).values()) == {leases.lease} and leases.lease != first
        assert await reach_keys(store) == {"x0"}
        # Written again fifty to a transaction, not one by one.
        assert batches == [50, 10] and one_by_one == []
    finally:
        await leases.close()


async def test_a_lease_found_gone_by_a_connecting_agent_is_replaced_for_everyone(store, monkeypatch):
    monkeypatch.setattr(agent_leases, "RENEW_FRACTION", 10.0)   # the renewal will not notice first
    leases = AgentLeases(store, TTL, sweep=SWEEP)
    try:
        held = [await leases.attach(f"y{i}") for i in range(3)]
        first = leases.lease
        await store.etcd.revoke(first)
        newcomer = await leases.attach("y-new")   # its write finds the lease gone: no error, a new lease
        assert leases.lease != first and newcomer.lease == leases.lease
        started = time.monotonic()
        while set(await agent_keys(store)) != {"y0", "y1", "y2", "y-new"}:
            assert time.monotonic() - started < TTL, "the keys under the old lease were not written again"
            await beat_for(leases, held + [newcomer], SWEEP)
        assert set((await agent_keys(store)).values()) == {leases.lease}
    finally:
        await leases.close()


async def test_a_lease_that_cannot_be_renewed_ends_every_stream(store, monkeypatch):
    leases = AgentLeases(store, TTL, sweep=SWEEP)
    try:
        holdings = [await leases.attach(f"f{i}") for i in range(3)]
        await beat_for(leases, holdings, 0.3)
        assert not any(h.lost.done() for h in holdings)   # the control: renewing, nothing ends

        async def refused(lease: int) -> bool:
            raise Unavailable("etcd at http://192.0.2.99:2379 is unreachable (test)")
        monkeypatch.setattr(store, "keep_alive", refused)
        await asyncio.wait_for(asyncio.gather(*(h.lost for h in holdings), return_exceptions=True), TTL)
        for holding in holdings:
            assert "unreachable (test)" in str(holding.lost.exception())
    finally:
        await leases.close()


async def test_a_sweep_after_a_stalled_loop_judges_nobody(store, monkeypatch):
    monkeypatch.setattr(agent_leases, "STALLED_SWEEPS", 2.0)
    leases = AgentLeases(store, TTL, sweep=SWEEP)
    try:
        holding = await leases.attach("stalled")
        await asyncio.sleep(SWEEP * 1.5)     # the sweep loop is running
        # Its last heartbeat read is older than the TTL, and the whole loop
        # blocks: its newer heartbeats would be waiting unread in the stream.
        holding.last_beat -= TTL + 1
        time.sleep(SWEEP * 5)
        await asyncio.sleep(SWEEP * 0.5)     # the first sweep after it
        assert "stalled" in await agent_keys(store)
        # The control: a sweep on time finds the heartbeat too old.
        await leases.sweep(asyncio.get_running_loop().time())
        assert "stalled" not in await agent_keys(store)
    finally:
        await leases.close()
