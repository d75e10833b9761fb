"""The controller's fan-out fast paths: which streams a change wakes, each record
encoded once for every stream, and hosts listed from the mirror (all pure)."""
from __future__ import annotations

import asyncio

import pytest

from controller.host_view import hosts_from_index
from controller.index import Index, StateEvent
from controller.interest import InterestRouter
from controller.keys import Keys
from controller.view import Change
from controller.wire_changes import WireChanges
from proto.records import Attachment, ContainerSpec, ContainerStatus, Endpoint, Host, HostAlive

keys = Keys("/vxmesh/")


def ev(kind: str, key: str, parts: tuple[str, ...], record=None, prev=None) -> StateEvent:
    return StateEvent(key=key, kind=kind, parts=parts, record=record, prev=prev)


def endpoint_event(network: str, name: str) -> StateEvent:
    record = Endpoint(network=network, container=name, host="h9", vtep="192.0.2.9", ip="10.1.0.9",
                      mac="02:42:0a:01:00:09")
    return ev("endpoint", keys.endpoint(network, name), (network, name), record)


def spec(name: str, host: str) -> ContainerSpec:
    return ContainerSpec(id=name * 4, name=name, host=host, attachments=[Attachment("blue", "10.1.0.2", "02:42:0a:01:00:02")])


def woken(*interests) -> list[bool]:
    return [i.relevant and i.woken.is_set() for i in interests]


@pytest.fixture
def router():
    return InterestRouter()


def subscribed(router, host, *networks):
    interest = router.add(host, networks)
    interest.relevant = False  # as after the stream's first look
    interest.woken.clear()
    return interest


async def test_an_endpoint_wakes_only_the_streams_of_its_network(router):
    blue, red, idle = subscribed(router, "h1", "blue"), subscribed(router, "h2", "red"), subscribed(router, "h3")
    router.route([endpoint_event("blue", "c1")])
    assert woken(blue, red, idle) == [True, False, False]


async def test_a_container_wakes_its_host_and_hosts_and_liveness_wake_everyone(router):
    h1, h2 = subscribed(router, "h1", "blue"), subscribed(router, "h2")
    router.route([ev("container", keys.container("c1"), ("c1",), spec("c1", "h2"))])
    assert woken(h1, h2) == [False, True]
    h2.woken.clear()
    router.route([ev("host", keys.host("h7"), ("h7",), Host(name="h7", vtep="192.0.2.7"))])
    await asyncio.sleep(router.broadcast_delay * 1.5)
    assert woken(h1, h2) == [True, True]
    h1.woken.clear(), h2.woken.clear()
    router.route([ev("alive", keys.alive("h7"), ("h7",))])
    await asyncio.sleep(router.broadcast_delay * 1.5)
    assert woken(h1, h2) == [True, True]


async def test_a_burst_of_changes_for_everyone_wakes_each_stream_once():
    router = InterestRouter(broadcast_delay=0.05)
    h1 = subscribed(router, "h1", "blue")
    wakes = []
    original = h1.mark_relevant
    h1.mark_relevant = lambda: (wakes.append(1), original())
    for i in range(50):    # fifty agents connecting: their host records
        router.route([ev("host", keys.host(f"n{i}"), (f"n{i}",), Host(name=f"n{i}", vtep="192.0.2.7"))])
    assert wakes == []     # not yet: more may come
    router.route([endpoint_event("blue", "c1")])
    assert wakes == [1]    # what concerns the stream alone is not held back
    await asyncio.sleep(0.1)
    assert wakes == [1, 1]
    # The control: with no delay, each change is a wake of its own.
    router = InterestRouter(broadcast_delay=0)
    h1 = subscribed(router, "h1", "blue")
    wakes.clear()
    original = h1.mark_relevant
    h1.mark_relevant = lambda: (wakes.append(1), original())
    for i in range(50):
        router.route([ev("host", keys.host(f"n{i}"), (f"n{i}",), Host(name=f"n{i}", vtep="192.0.2.7"))])
    assert len(wakes) == 50


async def test_what_no_view_carries_wakes_nobody(router):
    h1 = subscribed(router, "h1", "blue")
    router.route([ev("status", keys.status("c1"), ("c1",), ContainerStatus(name="c1", id="")),
                  ev("ipam", keys.ipam("blue", "10.1.0.2"), ("blue", "10.1.0.2"))])
    assert woken(h1) == [False]


async def test_a_stream_follows_its_views_networks_and_is_forgotten_when_gone(router):
    h1 = subscribed(router, "h1", "blue")
    router.update(h1, {"red"})
    router.route([endpoint_event("blue", "c1")])
    assert woken(h1) == [False]
    router.route([endpoint_event("red", "c2")])
    assert woken(h1) == [True]
    router.remove(h1)
    h1.relevant = False
    h1.woken.clear()
    router.route([ev("host", keys.host("h7"), ("h7",), Host(name="h7", vtep="192.0.2.7"))])
    await asyncio.sleep(router.broadcast_delay * 1.5)
    assert woken(h1) == [False] and router.streams == 0


async def test_a_new_stream_starts_woken(router):
    assert router.add("h1", ["blue"]).woken.is_set()


def test_each_record_is_encoded_once_for_every_stream():
    wire = WireChanges(limit=2)
    record = Endpoint(network="blue", container="c1", host="h1", vtep="192.0.2.1", ip="10.1.0.2",
                      mac="02:42:0a:01:00:02")
    first = wire.encode([Change("k1", record)])[0]
    again = wire.encode([Change("k1", record)])[0]
    assert again is first and (wire.hits, wire.misses) == (1, 1)
    assert first.endpoint.ip == "10.1.0.2" and not first.deleted
    # An equal but different record (a new etcd value) is encoded anew.
    fresh = wire.change(Change("k1", Endpoint(**{**record.to_dict(), "ip": "10.1.0.3"})))
    assert fresh.endpoint.ip == "10.1.0.3"
    deleted = wire.change(Change("k2", None))
    assert deleted.deleted and deleted.key == "k2"
    wire.change(Change("k3", record)), wire.change(Change("k4", record))
    assert len(wire._made) == 2  # bounded


def test_an_update_is_serialized_from_each_records_bytes_made_once():
    from proto import vxmesh_pb2 as pb
    wire = WireChanges()
    rows = [Endpoint(network="blue", container=f"c{i}", host="h1", vtep="192.0.2.1", ip=f"10.1.0.{i + 2}",
                     mac=f"02:42:0a:01:00:{i + 2:02x}") for i in range(3)]
    changes = [Change(keys.endpoint("blue", f"c{i}"), row) for i, row in enumerate(rows)]
    changes.append(Change(keys.endpoint("blue", "gone"), None))
    sent = wire.update_bytes(4242, changes, snapshot=True)
    # What an agent parses is what one message built the usual way would say.
    expected = pb.ControllerMessage(update=pb.ViewUpdate(revision=4242, snapshot=True,
                                                         changes=[c.to_wire() for c in changes]))
    assert pb.ControllerMessage.FromString(sent) == expected
    # A second stream's update of the same records reuses their bytes.
    misses = wire.misses
    assert wire.update_bytes(4243, changes[:2]) and wire.misses == misses
    assert pb.ControllerMessage.FromString(wire.update_bytes(7, [])).update.revision == 7


def test_hosts_from_the_mirror_match_what_host_ls_shows():
    index = Index(keys)
    index.hosts = {keys.host("h1"): Host(name="h1", vtep="192.0.2.1"), keys.host("h2"): Host(name="h2", vtep="192.0.2.2")}
    index.alive, index.connected = {"h1", "h3"}, {"h1"}
    index.alive_records = {"h1": HostAlive("h1"), "h3": HostAlive("h3", agent_down=True)}
    index.hosts[keys.host("h3")] = Host(name="h3", vtep="192.0.2.3")
    index._containers["h1"] = {keys.container("c1"): spec("c1", "h1"), keys.container("c2"): spec("c2", "h1")}
    hosts = hosts_from_index(index)
    assert (hosts["h1"].state, hosts["h1"].containers) == ("up", 2)
    assert (hosts["h2"].state, hosts["h2"].containers) == ("down", 0)
    assert hosts["h3"].state == "agent down"
    assert index.hosts[keys.host("h1")].state == "down"  # the mirror's records are not touched


async def test_cache_waits_end_on_a_relevant_batch_on_a_reload_or_on_timeout():
    from controller.cache import StateCache
    cache = StateCache(etcd=None, keys=keys)  # nothing here reads etcd
    interest = subscribed(cache.router, "h1", "blue")
    assert await cache.wait_relevant(interest, 0, timeout=0.05) is False
    asyncio.get_running_loop().call_later(0.02, cache.router.route, [endpoint_event("blue", "c1")])
    assert await cache.wait_relevant(interest, 0, timeout=5) is True
    assert not interest.woken.is_set() and not interest.relevant  # cleared for the next wait
    # A busy stream keeps its keepalive timer across waits; it still times out on time.
    started = asyncio.get_running_loop().time()
    assert await cache.wait_relevant(interest, 0, timeout=0.1) is False
    assert 0.09 <= asyncio.get_running_loop().time() - started < 1.0
    interest.wake_by(asyncio.get_running_loop(), started + 60)
    assert await cache.wait_relevant(interest, 0, timeout=0.05) is False  # an earlier deadline still holds
    cache.router.remove(interest)
    interest = cache.router.add("h1", ["blue"])
    assert await cache.wait_relevant(interest, 0, timeout=0.05) is True  # a new stream looks first
    cache.floor = 10  # the history no longer reaches revision 5: look now, for a snapshot
    assert await cache.wait_relevant(interest, 5, timeout=5) is True


async def test_cache_wait_until_sees_each_change_and_times_out():
    from controller.cache import StateCache
    cache = StateCache(etcd=None, keys=keys)
    assert await cache.wait_until(lambda: cache.revision >= 1, timeout=0.05) is False

    async def move():
        for revision in (1, 2):
            await asyncio.sleep(0.01)
            cache.revision = revision
            await cache._notify()

    mover = asyncio.create_task(move())
    assert await cache.wait_until(lambda: cache.revision >= 2, timeout=5) is True
    await mover


def test_the_index_keeps_each_hosts_endpoints_apart():
    from controller.etcd import KV, Event

    def put(ep, prev=None):
        kv = KV(key=keys.endpoint(ep.network, ep.container), value=ep.to_json(), create_revision=1,
                mod_revision=1, version=1)
        return Event(kind="put", kv=kv, prev=None)

    index = Index(keys)
    a = Endpoint(network="blue", container="c1", host="h1", vtep="192.0.2.1", ip="10.1.0.2", mac="02:42:0a:01:00:02")
    b = Endpoint(network="blue", container="c2", host="h2", vtep="192.0.2.2", ip="10.1.0.3", mac="02:42:0a:01:00:03")
    index.apply([put(a), put(b)])
    assert list(index.endpoints_on("blue", "h1").values()) == [a]
    moved = Endpoint(**{**a.to_dict(), "host": "h2", "vtep": "192.0.2.2"})
    index.apply([put(moved)])
    assert index.endpoints_on("blue", "h1") == {} and len(index.endpoints_on("blue", "h2")) == 2
    gone = KV(key=keys.endpoint("blue", "c2"), value=b"", create_revision=0, mod_revision=0, version=0)
    index.apply([Event(kind="delete", kv=gone, prev=None)])
    assert list(index.endpoints_on("blue", "h2").values()) == [moved]
    assert index.endpoints_of("blue") == {keys.endpoint("blue", "c1"): moved}


def test_the_index_tells_when_a_removal_awaits_its_hosts_confirmation():
    from controller.etcd import KV, Event

    def put(key, record):
        return Event(kind="put", kv=KV(key=key, value=record.to_json(), create_revision=1, mod_revision=1,
                                       version=1), prev=None)

    def delete(key):
        return Event(kind="delete", kv=KV(key=key, value=b"", create_revision=0, mod_revision=0, version=0),
                     prev=None)

    index = Index(keys)
    index.apply([put(keys.container("c1"), spec("c1", "h1")), put(keys.status("c1"), ContainerStatus(name="c1", id="")),
                 put(keys.container("c2"), spec("c2", "h1")), put(keys.status("c2"), ContainerStatus(name="c2", id=""))])
    assert not index.has_orphan_statuses()
    index.apply([delete(keys.container("c2"))])           # c2's spec is gone, its status stays
    assert index.has_orphan_statuses()
    index.apply([delete(keys.status("c2"))])              # its host confirmed the teardown
    assert not index.has_orphan_statuses()
    index.apply([put(keys.status("c3"), ContainerStatus(name="c3", id=""))])   # a status before its spec
    assert index.has_orphan_statuses()
    index.apply([put(keys.container("c3"), spec("c3", "h2"))])
    assert not index.has_orphan_statuses()


def test_the_router_wakes_every_stream_whose_view_a_change_reaches():
    """Routing and the views act on the same audiences (proto/kinds.py): a stream
    left asleep must be one whose view has nothing in the batch."""
    from controller.etcd import KV, Event
    from controller.view import AgentView

    def put(key, record, prev=None):
        kv = KV(key=key, value=record.to_json(), create_revision=1, mod_revision=1, version=1)
        old = None if prev is None else KV(key=key, value=prev.to_json(), create_revision=1, mod_revision=1,
                                           version=1)
        return Event(kind="put", kv=kv, prev=old)

    def delete(key, prev=None):
        kv = KV(key=key, value=b"", create_revision=0, mod_revision=0, version=0)
        old = None if prev is None else KV(key=key, value=prev.to_json(), create_revision=1, mod_revision=1,
                                           version=1)
        return Event(kind="delete", kv=kv, prev=old)

    def on(name, host, network):
        return ContainerSpec(id="ab" * 32, name=name, host=host,
                             attachments=[Attachment(network, "10.1.0.2", "02:42:0a:01:00:02")])

    def row(network, name, host):
        return Endpoint(network=network, container=name, host=host, vtep="192.0.2.9", ip="10.1.0.9",
                        mac="02:42:0a:01:00:09")

    from proto.records import HostAlive, Network
    batches = [
        [put(keys.host("h1"), Host(name="h1", vtep="192.0.2.1"))],
        [put(keys.alive("h2"), HostAlive("h2"))],
        [put(keys.container("a"), on("a", "h1", "blue"))],
        [put(keys.container("b"), on("b", "h2", "red"))],
        [put(keys.network("blue"), Network("blue", "10.1.0.0/24", "10.1.0.1", 4096))],
        [put(keys.endpoint("red", "b"), row("red", "b", "h2"))],
        [put(keys.endpoint("blue", "x"), row("blue", "x", "h2"))],
        [put(keys.status("a"), ContainerStatus(name="a", id=""))],
        [delete(keys.alive("h2"))],
        [delete(keys.container("a"), on("a", "h1", "blue"))],
        [delete(keys.container("ghost"))],
    ]
    index = Index(keys)
    router = InterestRouter(broadcast_delay=0)   # who is woken, not when
    views = {host: AgentView(host, index) for host in ("h1", "h2", "h3")}
    streams = {host: subscribed(router, host) for host in views}
    skipped = 0
    for batch in batches:
        events = index.apply(batch)
        scope = router.route(events)
        for host, view in views.items():
            # The batch's scope, kept in the history, lets a replaying stream skip it.
            concerned = scope.concerns(host, set(view.networks))
            changes = view.changes(events)
            if changes:
                assert streams[host].relevant, (host, batch, changes)
                assert concerned, (host, batch, changes)
            skipped += not concerned
            router.update(streams[host], view.networks)
            streams[host].relevant = False
            streams[host].woken.clear()
    assert skipped > 0   # the control: scopes leave streams out


def test_a_replay_skips_the_batches_whose_scope_leaves_the_stream_out():
    from controller import agent_feed
    from controller.interest import Scope

    class CountingView:
        host, networks = "h1", {"blue"}

        def __init__(self):
            self.asked = []

        def changes(self, events):
            self.asked.append(events)
            return [Change(e.key, e.record) for e in events]

    view = CountingView()
    blue, red, every = [endpoint_event("blue", "c1")], [endpoint_event("red", "c2")], [ev("alive", keys.alive("h7"), ("h7",))]
    history = [(1, blue, Scope.of(blue)), (2, red, Scope.of(red)), (3, every, Scope.of(every))]
    changes = agent_feed._replay(view, history)
    assert view.asked == [blue, every]
    assert [c.key for c in changes] == [keys.endpoint("blue", "c1"), keys.alive("h7")]



def test_a_snapshot_shares_the_part_every_agent_gets_and_leaves_out_its_own_liveness():
    from controller.etcd import KV, Event
    from controller.view import AgentView
    from proto import vxmesh_pb2 as pb
    from proto.records import Network

    def put(key, record):
        return Event(kind="put", kv=KV(key=key, value=record.to_json(), create_revision=1, mod_revision=1,
                                       version=1), prev=None)

    index = Index(keys)
    index.apply([put(keys.host(h), Host(name=h, vtep=f"192.0.2.{i}")) for i, h in enumerate(("h1", "h2", "h3"), 1)]
                + [put(keys.alive(h), HostAlive(h, since=5.0)) for h in ("h1", "h2", "h3")]
                + [put(keys.network("blue"), Network("blue", "10.1.0.0/24", "10.1.0.1", 4096)),
                   put(keys.container("a"), spec("a", "h1")), put(keys.container("b"), spec("b", "h2")),
                   put(keys.endpoint("blue", "a"), Endpoint(network="blue", container="a", host="h1",
                                                            vtep="192.0.2.1", ip="10.1.0.2", mac="02:42:0a:01:00:02"))])
    wire = WireChanges()

    def both(host: str) -> tuple[bytes, bytes]:
        usual = wire.update_bytes(9, AgentView(host, index).snapshot(), snapshot=True)
        return wire.snapshot_bytes(9, AgentView(host, index)), usual
    for host in ("h1", "h2", "h3", "h4"):
        shared, usual = both(host)
        assert shared == usual, host
    message = pb.ControllerMessage.FromString(both("h1")[0])
    assert keys.alive("h1") not in {c.key for c in message.update.changes}
    assert keys.alive("h2") in {c.key for c in message.update.changes}
    # The shared part follows the cluster: a host leaving the tables is seen at once.
    built = wire._cluster
    index.apply([Event(kind="delete", kv=KV(key=keys.alive("h2"), value=b"", create_revision=0, mod_revision=0,
                                            version=0), prev=None)])
    shared, usual = both("h1")
    assert shared == usual and wire._cluster is not built
    assert keys.alive("h2") not in {c.key for c in pb.ControllerMessage.FromString(shared).update.changes}
    # The control: the shared part is reused only while the cluster's version says nothing moved.
    index.alive.discard("h3")
    shared, usual = both("h1")
    assert shared != usual
