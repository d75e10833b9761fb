"""The agents' stream stays alive and fair: a controller in this process (on
a private etcd) with fake agents, and an agent link facing fake controllers.

- a stream whose controller side fails (here: etcd refusing to renew the
  agents' lease, controller/agent_leases.py) ends with a status the agent
  sees, instead of hanging;
- an idle stream carries keepalives;
- a stuck agent (connected, heartbeating, not reading) never delays another
  agent's updates, and gets one fresh snapshot once it reads again;
- an agent leaves a controller that goes silent, and one that never answers.
"""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from agent.link import ControllerLink
from agent.view import View
from controller.agent_feed import FeedCounters
from controller import agent_link
from controller.agent_link import AgentLinkService
from controller.cache import StateCache
from controller.embedded_etcd import EmbeddedEtcd
from proto.errors import Unavailable
from controller.etcd import Etcd
from controller.keys import Keys
from controller.store import Store
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import Host

pytestmark = pytest.mark.asyncio(loop_scope="module")

PREFIX = "/vxmesh/"
QUEUE_LIMIT = 8           # small, so a stuck agent overflows after a few big messages
KEEPALIVE = 0.5
LIVE_BOUND = 2.0          # seconds: how late a live agent may see a change
STUCK_CONTAINERS = 60
BIG_ENV = {"PAYLOAD": "x" * 262_144}  # each of the stuck host's specs is ~256 KB on the wire


class Controller:
    def __init__(self, store: Store, cache: StateCache, link: AgentLinkService, channel: grpc.aio.Channel):
        self.store, self.cache, self.link, self.channel = store, cache, link, channel

    def connect(self, messages) -> grpc.aio.StreamStreamCall:
        return pb_grpc.AgentLinkStub(self.channel).Connect(messages)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def controller():
    work = Path(tempfile.mkdtemp(prefix="vxmesh-test-liveness-"))
    socket = f"unix://{work}/ctl.sock"
    try:
        async with EmbeddedEtcd(work / "etcd") as embedded, contextlib.AsyncExitStack() as stack:
            etcd = await Etcd.connect([embedded.endpoint])
            stack.push_async_callback(etcd.close)
            store = Store(etcd, PREFIX)
            await store.ensure_builtin_networks()
            cache = StateCache(etcd, Keys(PREFIX))
            await cache.start()
            stack.push_async_callback(cache.stop)
            link = AgentLinkService(store, cache, host_ttl=5, counters=FeedCounters(),
                                    queue_limit=QUEUE_LIMIT, keepalive=KEEPALIVE)
            server = grpc.aio.server()
            agent_link.add_to_server(link, server)
            server.add_insecure_port(socket)
            await server.start()
            stack.push_async_callback(server.stop, 0)
            # The stuck agent's catch-up snapshot holds all its big specs at once.
            channel = grpc.aio.insecure_channel(socket, options=[("grpc.max_receive_message_length", 64 << 20)])
            stack.push_async_callback(channel.close)
            yield Controller(store, cache, link, channel)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def host(name: str, index: int) -> Host:
    return Host(name=name, vtep=f"192.0.2.{index}", api=f"192.0.2.{index}:7947", mtu=1500)


async def agent_messages(record: Host, stop: asyncio.Event | None = None):
    """What an agent writes: its hello, then a heartbeat a second (as agent/link.py)."""
    yield pb.AgentMessage(hello=pb.Hello(host=record.to_wire()))
    while stop is None or not stop.is_set():
        yield pb.AgentMessage(heartbeat=pb.Heartbeat())
        await asyncio.sleep(0.5)


async def first_update(call) -> pb.ViewUpdate:
    while True:
        msg = await asyncio.wait_for(call.read(), 10)
        assert msg is not grpc.aio.EOF, "the stream ended before its first update"
        if msg.WhichOneof("kind") == "update":
            return msg.update


async def test_a_failed_heartbeat_ends_the_stream_with_a_status(controller, monkeypatch):
    call = controller.connect(agent_messages(host("lv-fail", 10)))
    await first_update(call)

    async def etcd_refuses(lease_id: int) -> bool:
        raise Unavailable("etcd at http://192.0.2.99:2379 is unreachable (test)")
    monkeypatch.setattr(controller.store, "keep_alive", etcd_refuses)
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        while True:
            # Bounded: a handler that is cancelled rather than ended never
            # sends a status, and this read would wait forever.
            msg = await asyncio.wait_for(call.read(), 10)
            assert msg is not grpc.aio.EOF, "the stream ended with OK instead of an error"
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unreachable (test)" in err.value.details()
    assert time.monotonic() - started < 5


async def test_an_idle_stream_carries_keepalives(controller):
    stop = asyncio.Event()
    call = controller.connect(agent_messages(host("lv-idle", 11), stop))
    try:
        await first_update(call)
        started = time.monotonic()
        kinds = []
        while time.monotonic() - started < KEEPALIVE * 5:
            msg = await asyncio.wait_for(call.read(), KEEPALIVE * 3)
            kinds.append(msg.WhichOneof("kind"))
        assert kinds.count("heartbeat") >= 3, kinds
    finally:
        stop.set()
        call.cancel()


async def test_a_stuck_agent_delays_nobody_and_gets_a_snapshot_when_it_reads_again(controller):
    store, counters = controller.store, controller.link.counters
    await store.create_network("stuckn", "10.66.0.0/20")
    live_host, stuck_host = host("lv-live", 12), host("lv-stuck", 13)
    stop = asyncio.Event()
    live = controller.connect(agent_messages(live_host, stop))
    stuck = controller.connect(agent_messages(stuck_host, stop))
    try:
        await first_update(live)
        await first_update(stuck)        # then it stops reading, but keeps heartbeating
        # Both hosts take part in the network, so both get every row of its table.
        for name, on in (("lv-l0", live_host.name), ("lv-s0", stuck_host.name)):
            await store.create_container(name, on, ["sleep", "1"], {}, "", ["stuckn"])

        seen: dict[str, float] = {}
        async def read_live():
            while True:
                msg = await live.read()
                if msg is grpc.aio.EOF:
                    return
                for change in msg.update.changes:
                    if change.WhichOneof("record") == "endpoint" and not change.deleted:
                        seen.setdefault(change.endpoint.container, time.monotonic())
        reader = asyncio.create_task(read_live())
        resyncs_before = counters.resyncs
        created: dict[str, float] = {}
        for i in range(1, STUCK_CONTAINERS + 1):
            name = f"lv-s{i}"
            await store.create_container(name, stuck_host.name, ["sleep", "1"], BIG_ENV, "", ["stuckn"])
            created[name] = time.monotonic()
        deadline = time.monotonic() + LIVE_BOUND + 5
        while set(created) - set(seen) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not set(created) - set(seen), f"the live agent never got {sorted(set(created) - set(seen))}"
        lateness = max(seen[n] - created[n] for n in created)
        assert lateness < LIVE_BOUND, f"the live agent got a change {lateness:.2f}s late"
        assert counters.resyncs > resyncs_before, "the stuck agent's queue never overflowed"
        reader.cancel()

        # The stuck agent reads again: what was in flight, then one snapshot
        # that brings it to the present.
        view = View(stuck_host.name)
        updates = []
        while True:
            msg = await asyncio.wait_for(stuck.read(), 10)
            if msg.WhichOneof("kind") != "update":
                continue
            updates.append(msg.update)
            view.apply(msg.update)
            if msg.update.snapshot:
                break
        assert len(updates) <= QUEUE_LIMIT + STUCK_CONTAINERS // 2, \
            f"{len(updates)} updates before the snapshot: the backlog was not bounded"
        want = {f"lv-s{i}" for i in range(STUCK_CONTAINERS + 1)}
        assert set(view.containers()) == want
        assert {e.container for e in view.endpoints("stuckn")} == want | {"lv-l0"}
    finally:
        stop.set()
        live.cancel()
        stuck.cancel()


class SilentController(pb_grpc.AgentLinkServicer):
    """Accepts streams and then says nothing (after one snapshot, if `greet`)."""

    def __init__(self, greet: bool):
        self.greet = greet
        self.connects = 0

    async def Connect(self, request_iterator, context):
        self.connects += 1
        await anext(aiter(request_iterator))
        if self.greet:
            yield pb.ControllerMessage(update=pb.ViewUpdate(revision=1, snapshot=True))
        await asyncio.Event().wait()


@pytest.mark.parametrize("greet", [True, False], ids=["silent-after-snapshot", "never-answers"])
async def test_an_agent_leaves_a_silent_controller(greet):
    fake = SilentController(greet)
    server = grpc.aio.server()
    pb_grpc.add_AgentLinkServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    silence = 0.5
    link = ControllerLink([f"127.0.0.1:{port}"], host("lv-agent", 14), View("lv-agent"),
                          on_update=lambda: None, held_containers=list, silence=silence)
    task = asyncio.create_task(link.run())
    try:
        started = time.monotonic()
        # One silence bound (three for a first answer) plus the reconnect backoff.
        bound = silence * 3 + 2
        while fake.connects < 2 and time.monotonic() - started < bound:
            await asyncio.sleep(0.05)
        assert fake.connects >= 2, f"the agent stayed on a silent controller for {bound}s"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(0)
