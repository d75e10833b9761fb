"""The store, the etcd client and the embedded etcd, against a real etcd.

One etcd process (EmbeddedEtcd in a temp dir) serves the module; every test
works under its own random key prefix. Tests that need to stop etcd start
their own.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from controller.embedded_etcd import EmbeddedEtcd, EmbeddedEtcdError
from proto.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from controller.etcd import Compacted, Compare, Etcd, EtcdUnavailable, Op
from controller.store import Store
from proto.records import ContainerStatus, Host
from tests.helpers.etcd import snapshot

pytestmark = pytest.mark.asyncio(loop_scope="module")


def dead_loopback_endpoint() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def add_host(store: Store, name: str = "h1", vtep: str = "192.0.2.1") -> None:
    await store.register_host(Host(name=name, vtep=vtep, api=f"{vtep}:7001"))


# ---- networks -----------------------------------------------------------------

async def test_create_list_get_and_remove_networks(store, etcd, prefix):
    blue = await store.create_network("blue", "10.77.0.0/24")
    assert (blue.subnet, blue.gateway, blue.vni, blue.driver) == ("10.77.0.0/24", "10.77.0.1", 4096, "overlay")
    assert len(blue.id) == 64 and blue.created_at > 0
    red = await store.create_network("red", "10.78.0.0/16", gateway="10.78.255.254", vni=42)
    green = await store.create_network("green", "10.79.0.0/24")
    assert green.vni == 4097

    assert [n.name for n in await store.list_networks()] == ["blue", "green", "red"]
    assert await store.get_network("red") == red

    # values are plain JSON for etcdctl, the VNI reservation names its network
    raw = await etcd.get(f"{prefix}networks/red")
    assert json.loads(raw.value)["gateway"] == "10.78.255.254"
    assert (await etcd.get(f"{prefix}vnis/42")).value == b"red"

    await store.remove_network("red")
    assert [n.name for n in await store.list_networks()] == ["blue", "green"]
    assert await etcd.get(f"{prefix}vnis/42") is None
    with pytest.raises(NotFound, match="network 'red' not found"):
        await store.get_network("red")
    with pytest.raises(NotFound, match="network 'red' not found"):
        await store.remove_network("red")


async def test_refused_networks_leave_etcd_untouched(store, etcd, prefix):
    await store.create_network("blue", "10.77.0.0/24", vni=5000)
    before = await snapshot(etcd, prefix)

    refusals = [
        (dict(name="bad", subnet="10.0.0.0/33"), InvalidArgument, "invalid subnet '10.0.0.0/33'"),
        (dict(name="bad", subnet="10.0.0.1/24"), InvalidArgument, "host bits are set"),
        (dict(name="bad", subnet="10.1.0.0/24", gateway="10.2.0.1"), InvalidArgument, "outside the subnet"),
        (dict(name="bad/name", subnet="10.1.0.0/24"), InvalidArgument, "invalid network name 'bad/name'"),
        (dict(name="bad", subnet="10.1.0.0/24", vni=1 << 24), InvalidArgument, "invalid VNI"),
        (dict(name="bad", subnet="10.1.0.0/24", driver="macvlan"), InvalidArgument, "unsupported network driver"),
        (dict(name="bad", subnet="10.1.0.0/24", driver="bridge", vni=7), InvalidArgument, "--vni is for overlay"),
        (dict(name="wide", subnet="10.0.0.0/8"), FailedPrecondition,
         "subnet 10.0.0.0/8 overlaps network 'blue' (10.77.0.0/24)"),
        (dict(name="other", subnet="10.1.0.0/24", vni=5000), AlreadyExists,
         "VNI 5000 is already used by network 'blue'"),
        (dict(name="blue", subnet="10.1.0.0/24"), AlreadyExists, "network 'blue' already exists"),
    ]
    for kwargs, error, message in refusals:
        with pytest.raises(error) as err:
            await store.create_network(**kwargs)
        assert message in str(err.value), kwargs

    assert await snapshot(etcd, prefix) == before  # same keys, values and revision


async def test_networks_stay_off_the_hosts_own_subnets_and_space_that_is_not_unicast(store, etcd, prefix):
    """Each refusal is one line naming the conflict, and etcd is untouched; the
    hosts' subnets come from their records (registered from their hellos)."""
    await store.register_host(Host(name="h1", vtep="192.0.2.11", underlay_subnet="192.0.2.0/24",
                                   gwbridge_subnet="172.18.0.0/16", bridge_subnet="172.17.0.0/16"))
    await store.register_host(Host(name="h2", vtep="198.51.100.12", underlay_subnet="198.51.100.0/24",
                                   gwbridge_subnet="172.20.0.0/16", bridge_subnet="172.21.0.0/16"))
    before = await snapshot(etcd, prefix)
    refusals = [
        ("192.0.2.0/25", "overlay", FailedPrecondition,
         "subnet 192.0.2.0/25 overlaps the underlay of host h1 (192.0.2.0/24)"),
        ("198.51.0.0/16", "overlay", FailedPrecondition,
         "subnet 198.51.0.0/16 overlaps the underlay of host h2 (198.51.100.0/24)"),
        ("172.18.5.0/24", "overlay", FailedPrecondition,
         "subnet 172.18.5.0/24 overlaps the gwbridge of host h1 (172.18.0.0/16)"),
        ("172.21.0.0/24", "overlay", FailedPrecondition,
         "subnet 172.21.0.0/24 overlaps the default bridge of host h2 (172.21.0.0/16)"),
        # A bridge network exists on every host: it must stay off every host's subnets too.
        ("172.17.1.0/24", "bridge", FailedPrecondition,
         "subnet 172.17.1.0/24 overlaps the default bridge of host h1 (172.17.0.0/16)"),
        ("127.0.0.0/24", "overlay", InvalidArgument, "subnet 127.0.0.0/24 overlaps 127.0.0.0/8, loopback"),
        ("0.0.0.0/8", "overlay", InvalidArgument, 'subnet 0.0.0.0/8 overlaps 0.0.0.0/8, "this network"'),
        ("169.254.7.0/24", "bridge", InvalidArgument, "subnet 169.254.7.0/24 overlaps 169.254.0.0/16, link-local"),
        ("224.1.0.0/24", "overlay", InvalidArgument, "subnet 224.1.0.0/24 overlaps 224.0.0.0/4, multicast"),
        ("240.0.0.0/24", "overlay", InvalidArgument, "subnet 240.0.0.0/24 overlaps 240.0.0.0/4, reserved"),
    ]
    for subnet, driver, error, message in refusals:
        with pytest.raises(error) as err:
            await store.create_network("bad", subnet, driver=driver)
        assert str(err.value).startswith(message) and "\n" not in str(err.value), (subnet, str(err.value))
    assert await snapshot(etcd, prefix) == before
    # The control: next to all of them, a subnet of nobody's is fine.
    assert (await store.create_network("good", "172.19.0.0/16")).subnet == "172.19.0.0/16"


async def test_concurrent_creates_of_one_name_let_exactly_one_win(etcd_server, prefix):
    async with await Etcd.connect([etcd_server.endpoint]) as a, await Etcd.connect([etcd_server.endpoint]) as b:
        one, two = Store(a, prefix), Store(b, prefix)
        for round_ in range(5):
            name = f"net{round_}"
            results = await asyncio.gather(
                one.create_network(name, f"10.{round_}.1.0/24"),
                two.create_network(name, f"10.{round_}.2.0/24"),
                return_exceptions=True,
            )
            winners = [r for r in results if not isinstance(r, Exception)]
            losers = [r for r in results if isinstance(r, Exception)]
            assert len(winners) == 1 and len(losers) == 1, results
            assert isinstance(losers[0], AlreadyExists)
            assert str(losers[0]) == f"network '{name}' already exists"
            assert (await one.get_network(name)).subnet == winners[0].subnet
        vnis = [n.vni for n in await one.list_networks()]
        assert len(set(vnis)) == 5


async def test_concurrent_overlapping_subnets_are_caught(etcd_server, prefix):
    async with await Etcd.connect([etcd_server.endpoint]) as a, await Etcd.connect([etcd_server.endpoint]) as b:
        one, two = Store(a, prefix), Store(b, prefix)
        for round_ in range(5):
            results = await asyncio.gather(
                # distinct VNIs, so only the subnet guard can stop the second one
                one.create_network(f"wide{round_}", f"10.{100 + round_}.0.0/16", vni=7000 + round_),
                two.create_network(f"narrow{round_}", f"10.{100 + round_}.7.0/24", vni=8000 + round_),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, Exception)]
            assert len(failures) == 1, results
            assert isinstance(failures[0], FailedPrecondition)
            assert "overlaps network" in str(failures[0])


async def test_remove_network_is_refused_while_a_container_is_attached(store):
    await add_host(store)
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_container("c1", "h1", ["sleep", "1"], {}, "", ["blue"])
    await store.create_container("c2", "h1", ["sleep", "1"], {}, "", ["blue"])
    with pytest.raises(FailedPrecondition, match="network 'blue' has active endpoints: c1, c2"):
        await store.remove_network("blue")
    await store.delete_container("c1")
    await store.delete_container("c2")
    await store.remove_network("blue")
    assert await store.list_networks() == []


# ---- containers ---------------------------------------------------------------

async def test_create_container_writes_spec_addresses_endpoints_and_status(store, etcd, prefix):
    await add_host(store, "h1", "192.0.2.1")
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_network("red", "10.78.0.0/24", gateway="10.78.0.2")
    spec = await store.create_container("web", "h1", ["nc", "-l"], {"A": "1"}, "", ["blue", "red"])

    assert len(spec.id) == 64 and spec.desired == "running" and spec.hostname == "web"
    assert [(a.network, a.ip, a.mac) for a in spec.attachments] == [
        ("blue", "10.77.0.2", "02:42:0a:4d:00:02"),
        ("red", "10.78.0.1", "02:42:0a:4e:00:01"),  # the gateway is .2 here, so .1 is free
    ]
    got, status = await store.get_container("web")
    assert got == spec
    assert (status.state, status.id) == ("created", spec.id)
    endpoints = await store.network_endpoints("red")
    assert [(e.container, e.host, e.vtep, e.ip, e.mac) for e in endpoints] == [
        ("web", "h1", "192.0.2.1", "10.78.0.1", "02:42:0a:4e:00:01")
    ]
    allocation = await etcd.get(f"{prefix}ipam/blue/10.77.0.2")
    assert json.loads(allocation.value) == {"container": "web", "host": "h1", "id": spec.id}
    assert [s.name for s, _ in await store.list_containers()] == ["web"]


async def test_create_container_reads_what_it_checks_at_once(store, etcd, monkeypatch):
    """The request, the name, a leftover status and the host: read together, one round trip."""
    await add_host(store, "h1", "192.0.2.1")
    await store.create_network("blue", "10.77.0.0/24")
    real_get, in_flight, most = etcd.get, 0, 0

    async def get(key):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await real_get(key)
        finally:
            in_flight -= 1
    monkeypatch.setattr(etcd, "get", get)
    await store.create_container("web", "h1", [], {}, "", ["blue"], request_id="req-0123456789")
    assert most == 4
    # And the answers are still taken in their order: a repeat of the request gets its container.
    again = await store.create_container("web", "h1", [], {}, "", ["blue"], request_id="req-0123456789")
    assert again.name == "web"


async def test_refused_containers_leave_etcd_untouched(store, etcd, prefix):
    await add_host(store)
    await store.create_network("tiny", "10.77.0.0/30")  # room for one container
    await store.create_container("c1", "h1", [], {}, "", ["tiny"])
    before = await snapshot(etcd, prefix)

    refusals = [
        (("c2", "h1", ["ghost"]), NotFound, "network 'ghost' not found"),
        (("c2", "h9", ["tiny"]), NotFound, "host 'h9' not found"),
        (("c1", "h1", ["tiny"]), AlreadyExists, "container 'c1' already exists"),
        (("c2", "h1", ["tiny"]), ResourceExhausted, "network 'tiny' has no free address in 10.77.0.0/30"),
        (("c2", "h1", ["tiny", "tiny"]), InvalidArgument, "listed twice"),
        (("-c2", "h1", ["tiny"]), InvalidArgument, "invalid container name '-c2'"),
    ]
    for (name, host, networks), error, message in refusals:
        with pytest.raises(error) as err:
            await store.create_container(name, host, [], {}, "", networks)
        assert message in str(err.value)
        assert err.value.code == error.code
    assert await snapshot(etcd, prefix) == before


async def test_two_controllers_hand_out_distinct_addresses(etcd_server, prefix):
    async with await Etcd.connect([etcd_server.endpoint]) as a, await Etcd.connect([etcd_server.endpoint]) as b:
        one, two = Store(a, prefix), Store(b, prefix)
        await add_host(one)
        await one.create_network("blue", "10.77.0.0/24")
        specs = await asyncio.gather(
            *(
                (one if i % 2 else two).create_container(f"c{i}", "h1", ["true"], {}, "", ["blue"])
                for i in range(40)
            )
        )
        ips = [s.attachments[0].ip for s in specs]
        assert len(set(ips)) == 40
        assert "10.77.0.1" not in ips  # the gateway
        allocations, _ = await a.get_prefix(f"{prefix}ipam/blue/")
        assert sorted(kv.key.rsplit("/", 1)[1] for kv in allocations) == sorted(ips)
        endpoints = await one.network_endpoints("blue")
        assert sorted((e.container, e.ip) for e in endpoints) == sorted((s.name, s.attachments[0].ip) for s in specs)
        assert len({e.mac for e in endpoints}) == 40


async def test_delete_keeps_the_address_until_release(store, etcd, prefix):
    await add_host(store)
    await add_host(store, "h2", "192.0.2.2")
    await store.create_network("blue", "10.77.0.0/24")
    first = await store.create_container("c1", "h1", [], {}, "", ["blue"])
    assert first.attachments[0].ip == "10.77.0.2"

    deleted = await store.delete_container("c1")
    assert deleted == first
    with pytest.raises(NotFound, match="container 'c1' not found"):
        await store.get_container("c1")
    assert await store.network_endpoints("blue") == []
    assert await etcd.get(f"{prefix}ipam/blue/10.77.0.2") is not None
    assert await etcd.get(f"{prefix}status/c1") is not None
    assert await store.pending_releases() == ["c1"]
    assert await store.pending_releases("h1") == ["c1"]
    assert await store.pending_releases("h2") == []

    # the old owner may still hold .2, so a newcomer gets .3
    second = await store.create_container("c2", "h1", [], {}, "", ["blue"])
    assert second.attachments[0].ip == "10.77.0.3"
    # and the name stays reserved until the host confirms
    with pytest.raises(FailedPrecondition, match="not yet confirmed"):
        await store.create_container("c1", "h1", [], {}, "", ["blue"])
    # neither a live container nor another host's report frees anything
    before = await snapshot(etcd, prefix)
    assert await store.release_container("c2", "h1") is False
    assert await store.release_container("c1", "h2") is False
    assert await snapshot(etcd, prefix) == before

    assert await store.release_container("c1", "h1") is True
    assert await store.release_container("c1", "h1") is True  # a repeated report is harmless
    assert await etcd.get(f"{prefix}ipam/blue/10.77.0.2") is None
    assert await etcd.get(f"{prefix}status/c1") is None
    assert await store.pending_releases() == []
    third = await store.create_container("c1", "h1", [], {}, "", ["blue"])
    assert third.attachments[0].ip == "10.77.0.2"
    assert third.id != first.id


async def test_a_removed_network_leaves_only_a_status_any_host_may_release(store, etcd, prefix):
    await add_host(store, "h1")
    await add_host(store, "h2", "192.0.2.2")
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_container("c1", "h1", [], {}, "", ["blue"])
    await store.delete_container("c1")
    await store.remove_network("blue")  # drops the addresses; the status waits for h1
    assert await etcd.get_prefix(f"{prefix}ipam/") == ([], await etcd.revision())
    assert await store.pending_releases("h2") == ["c1"]
    assert await store.release_container("c1", "h2") is True
    assert await store.pending_releases() == []


async def test_status_is_accepted_only_from_the_owning_host(store):
    await add_host(store, "h1", "192.0.2.1")
    await add_host(store, "h2", "192.0.2.2")
    await store.create_network("blue", "10.77.0.0/24")
    spec = await store.create_container("c1", "h1", [], {}, "", ["blue"])
    running = ContainerStatus(name="c1", id=spec.id, state="running", pid=1234, started_at=time.time())

    assert await store.put_status("h2", running) is False
    assert await store.put_status("h1", ContainerStatus(name="c1", id="0" * 64, state="running")) is False
    assert await store.put_status("h1", ContainerStatus(name="ghost", id=spec.id)) is False
    assert (await store.get_container("c1"))[1].state == "created"

    assert await store.put_status("h1", running) is True
    assert (await store.get_container("c1"))[1] == running


async def test_set_desired_and_generation(store):
    await add_host(store)
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_container("c1", "h1", [], {}, "", ["blue"])
    stopped = await store.set_desired("c1", "stopped")
    assert (stopped.desired, stopped.generation) == ("stopped", 0)
    started = await store.set_desired("c1", "running", bump_generation=True)
    assert (started.desired, started.generation) == ("running", 1)
    assert (await store.get_container("c1"))[0] == started
    with pytest.raises(InvalidArgument, match="invalid desired state 'paused'"):
        await store.set_desired("c1", "paused")
    with pytest.raises(NotFound):
        await store.set_desired("nope", "stopped")


# ---- hosts --------------------------------------------------------------------

async def test_new_vtep_rewrites_that_hosts_endpoints(store):
    await add_host(store, "h1", "192.0.2.1")
    await add_host(store, "h2", "192.0.2.2")
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_container("a", "h1", [], {}, "", ["blue"])
    await store.create_container("b", "h2", [], {}, "", ["blue"])

    await add_host(store, "h1", "192.0.2.11")
    vteps = {e.container: e.vtep for e in await store.network_endpoints("blue")}
    assert vteps == {"a": "192.0.2.11", "b": "192.0.2.2"}
    with pytest.raises(InvalidArgument, match="invalid VTEP address 'nope'"):
        await store.register_host(Host(name="h3", vtep="nope"))


async def test_a_host_registering_again_unchanged_is_not_rewritten(store, etcd, prefix):
    host = Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001", mtu=1500)
    await store.register_host(host)
    first = await etcd.get(f"{prefix}hosts/h1")
    await store.register_host(host)                      # a reconnection: nothing changed
    assert (await etcd.get(f"{prefix}hosts/h1")).mod_revision == first.mod_revision
    # The control: a changed record is written.
    await store.register_host(Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001", mtu=9000))
    again = await etcd.get(f"{prefix}hosts/h1")
    assert again.mod_revision > first.mod_revision and json.loads(again.value)["mtu"] == 9000


async def test_liveness_follows_the_lease(store, etcd, prefix):
    await add_host(store, "h1")
    await add_host(store, "h2", "192.0.2.2")
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_container("c1", "h1", [], {}, "", ["blue"])
    lease = await store.mark_alive("h1", ttl=10)
    await store.settle("h1", grace=120)

    hosts = {h.name: h for h in await store.list_hosts()}
    assert (hosts["h1"].state, hosts["h1"].containers) == ("up", 1)
    assert (hosts["h2"].state, hosts["h2"].containers) == ("down", 0)
    agent = await etcd.get(f"{prefix}agents/h1")
    assert agent.lease == lease and json.loads(agent.value)["controller"] == store.controller_id
    assert await store.keep_alive(lease) is True

    # The agent gone, its host stays in the tables for the grace period...
    await store.mark_down(lease)
    await store.settle("h1", grace=120)
    assert (await store.get_host("h1")).state == "agent down"
    # ...and with none, it leaves them.
    await store.settle("h1", grace=0)
    assert (await store.get_host("h1")).state == "down"
    assert await store.keep_alive(lease) is False
    await store.mark_down(lease)  # revoking twice is harmless


# ---- the etcd client ----------------------------------------------------------

async def test_lease_renewals_share_one_stream_and_survive_its_loss(etcd):
    leases = [await etcd.grant(30) for _ in range(20)]
    try:
        # Concurrent renewals, each answered with its own lease's TTL, on one stream.
        ttls = await asyncio.gather(*(etcd.keepalive(lease) for lease in leases * 3))
        assert all(0 < ttl <= 30 for ttl in ttls)
        shared = etcd._renewals._call
        assert shared is not None
        await etcd.keepalive(leases[0])
        assert etcd._renewals._call is shared
        # The stream breaks (a member restarting would end it): renewals go on.
        shared.cancel()
        assert all(ttl > 0 for ttl in await asyncio.gather(*(etcd.keepalive(lease) for lease in leases)))
        assert await etcd.keepalive(leases[0]) > 0 and etcd._renewals._call is not shared
        # A revoked lease renews to 0, on the shared stream as on a stream of its own.
        await etcd.revoke(leases[-1])
        assert await etcd.keepalive(leases[-1]) == 0
    finally:
        for lease in leases:
            await etcd.revoke(lease)


async def test_watch_yields_events_grouped_per_revision(etcd, prefix):
    start = await etcd.put(f"{prefix}a", b"1")
    txn = await etcd.txn([], [Op.put(f"{prefix}b", b"2"), Op.put(f"{prefix}c", b"3")])
    deleted = await etcd.delete(f"{prefix}a")
    await etcd.put(f"{prefix[:-1]}-sibling/k", b"x")  # outside the prefix: not reported

    seen = []
    watch = etcd.watch(prefix, start)
    try:
        async for revision, events in watch:
            seen.append((revision, [(e.kind, e.kv.key, e.kv.value, e.prev and e.prev.value) for e in events]))
            if revision == deleted:
                break
    finally:
        await watch.aclose()
    assert seen == [
        (start, [("put", f"{prefix}a", b"1", None)]),
        (txn.revision, [("put", f"{prefix}b", b"2", None), ("put", f"{prefix}c", b"3", None)]),
        (deleted, [("delete", f"{prefix}a", b"", b"1")]),
    ]


async def test_watch_reports_progress_when_asked(etcd, prefix):
    current = await etcd.put(f"{prefix}k", b"v")
    watch = etcd.watch(prefix, current + 1, progress_interval=0.1)
    try:
        revision, events = await asyncio.wait_for(anext(watch), 5)
    finally:
        await watch.aclose()
    assert events == [] and revision >= current


async def test_watch_from_a_compacted_revision_raises(etcd, prefix):
    old = await etcd.put(f"{prefix}k", b"1")
    now = await etcd.put(f"{prefix}k", b"2")
    await etcd.compact(now)
    with pytest.raises(Compacted) as err:
        async for _ in etcd.watch(prefix, old):
            pass
    assert err.value.compact_revision >= now


async def test_range_compares(etcd, prefix):
    assert (await etcd.txn([Compare.prefix_empty(f"{prefix}d/")], [])).succeeded
    revision = await etcd.put(f"{prefix}d/x", b"1")
    assert not (await etcd.txn([Compare.prefix_empty(f"{prefix}d/")], [])).succeeded
    unchanged = Compare.prefix_unchanged_since(f"{prefix}d/", revision)
    assert (await etcd.txn([unchanged], [])).succeeded
    await etcd.put(f"{prefix}d/y", b"2")
    assert not (await etcd.txn([unchanged], [])).succeeded
    assert (await etcd.txn([Compare.exists(f"{prefix}d/x"), Compare.absent(f"{prefix}d/z")], [])).succeeded
    await etcd.delete_prefix(f"{prefix}d/")
    assert await etcd.get_prefix(f"{prefix}d/") == ([], await etcd.revision())


async def test_dead_endpoint_fails_fast_and_failover_finds_the_live_one(etcd_server):
    dead = dead_loopback_endpoint()
    started = time.monotonic()
    with pytest.raises(EtcdUnavailable, match=f"etcd at {dead} is unreachable"):
        await Etcd.connect([dead], timeout=3)
    assert time.monotonic() - started < 5

    async with await Etcd.connect([f"http://{dead}", etcd_server.endpoint]) as client:
        assert client.endpoint == etcd_server.endpoint
        assert await client.revision() > 0


async def test_store_reports_a_stopped_etcd_and_a_restart_keeps_the_data(work_dir):
    server = EmbeddedEtcd(work_dir / "restart" / "data")
    try:
        endpoint = await server.start()
        port = int(endpoint.rsplit(":", 1)[1])
        async with await Etcd.connect([endpoint], timeout=3) as client:
            store = Store(client, "/vxmesh/")
            await store.create_network("blue", "10.77.0.0/24")
            watch = client.watch("/vxmesh/", await client.revision() + 1)
            waiting = asyncio.ensure_future(anext(watch))
            await asyncio.sleep(0.2)  # let the watch get established
            await server.stop()

            with pytest.raises(EtcdUnavailable, match="watch on /vxmesh/"):
                await asyncio.wait_for(waiting, 5)
            await watch.aclose()

            started = time.monotonic()
            with pytest.raises(Unavailable) as err:
                await store.list_networks()
            assert time.monotonic() - started < 5
            assert err.value.code == grpc.StatusCode.UNAVAILABLE
            assert "is unreachable" in str(err.value)

            await server.start(client_port=port)
            assert [n.name for n in await store.list_networks()] == ["blue"]
        log = (work_dir / "restart" / "etcd.log").read_text()
        assert "127.0.0.1:%d" % port in log
    finally:
        await server.stop()


async def test_embedded_etcd_failure_shows_its_log(work_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedEtcd(work_dir / "clash" / "data", client_port=port, peer_port=port + 1)
        with pytest.raises(EmbeddedEtcdError, match="address already in use"):
            await server.start()
    assert server.pid is None  # stopped and reaped


def is_running_etcd(pid: int) -> bool:
    """True while `pid` is a live (not zombie) etcd, so a reused pid never counts."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"etcd" in cmdline


async def test_embedded_etcd_dies_with_a_killed_owner(work_dir):
    owner_code = textwrap.dedent(
        """
        import asyncio, os, sys
        from controller.embedded_etcd import EmbeddedEtcd

        async def main():
            server = EmbeddedEtcd(sys.argv[1])
            await server.start()
            print(server.pid, flush=True)
            os._exit(0)  # die without stopping etcd, as a crash or SIGKILL would

        asyncio.run(main())
        """
    )
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", owner_code, str(work_dir / "orphan" / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    out, err = await asyncio.wait_for(owner.communicate(), 30)
    assert owner.returncode == 0, err.decode()
    pid = int(out)
    try:
        deadline = time.monotonic() + 10
        while is_running_etcd(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not is_running_etcd(pid), f"etcd {pid} outlived its owner"
    finally:
        if is_running_etcd(pid):
            os.kill(pid, signal.SIGKILL)
