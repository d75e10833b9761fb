"""The agent's end of the AgentLink stream.

Keeps one stream open to one of the controllers it was given, sends the
hello (with the revision to resume from), a heartbeat every second and the
status reports the reconcile loop queues; applies the view updates it gets
and wakes the reconcile loop. On any break it moves on to the next
controller with a short backoff and resumes from the last applied revision.
A controller that says nothing for SILENCE_SECONDS (it sends a keepalive
every second when idle) counts as a break: a hung controller, or one whose
stream died without a status, must not strand the host.

No status is lost for good: every container's last status goes again at
the start of each stream, and whenever a controller asks (a resync/ record
in the view, put there by a controller that waited for a status in vain).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import grpc

from agent.view import View
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ContainerStatus, Host, Reachability

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
# Several of the controller's keepalive intervals (controller/agent_feed.py).
SILENCE_SECONDS = 5.0
CONNECT_FACTOR = 3


class ControllerSilent(ConnectionError):
    """The controller sent nothing, not even a keepalive, for too long."""


class ControllerLink:
    def __init__(self, addresses: list[str], host: Host, view: View,
                 on_update: Callable[[], None], held_containers: Callable[[], list[str]],
                 silence: float = SILENCE_SECONDS,
                 dial: Callable[[str], grpc.aio.Channel] = grpc.aio.insecure_channel,
                 drop: Callable[[pb.AgentMessage], bool] | None = None):
        self.addresses = addresses
        self.silence = silence
        self.dial = dial  # opens a channel to a controller: mutual TLS in a deployment
        # For tests only: a queued message it returns True for is lost, as one
        # in flight on a stream that breaks. Nothing in the agent sets it.
        self.drop = drop
        self._resync_seen = 0.0
        self.host = host
        self.view = view
        self.on_update = on_update
        self.held_containers = held_containers
        self.connected = asyncio.Event()
        self._outbox: asyncio.Queue[pb.AgentMessage] = asyncio.Queue()
        self._reported: dict[str, ContainerStatus] = {}
        self._reach: Reachability | None = None

    def report(self, status: ContainerStatus) -> None:
        """Queue a status report, unless it says what was last said."""
        if self._reported.get(status.name) == status:
            return
        message = pb.AgentMessage(status=status.to_wire())   # first: one that cannot go is not kept
        self._reported[status.name] = status
        self._outbox.put_nowait(message)

    def report_reachability(self, report: Reachability) -> None:
        """Queue what the probes of the peers' VTEPs found (agent/probes.py)."""
        self._reach = report
        self._outbox.put_nowait(pb.AgentMessage(reachability=report.to_wire()))

    def resend(self) -> None:
        """Queue every container's last status again, as a controller asked."""
        log.info("resending %d container statuses", len(self._reported))
        for status in self._reported.values():
            self._outbox.put_nowait(pb.AgentMessage(status=status.to_wire()))

    def forget(self, name: str) -> None:
        self._reported.pop(name, None)

    async def run(self) -> None:
        backoff = 0.1
        attempt = 0
        while True:
            address = self.addresses[attempt % len(self.addresses)]
            attempt += 1
            try:
                await self._session(address)
                backoff = 0.1
            except (grpc.aio.AioRpcError, ConnectionError, asyncio.TimeoutError) as err:
                detail = err.details() if isinstance(err, grpc.aio.AioRpcError) else str(err)
                log.warning("controller %s: %s; reconnecting in %.1fs", address, detail, backoff)
            self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _session(self, address: str) -> None:
        async with self.dial(address) as channel:
            stub = pb_grpc.AgentLinkStub(channel)
            call = stub.Connect(self._messages())
            try:
                await self._receive(address, call)
            finally:
                call.cancel()

    async def _receive(self, address: str, call) -> None:
        first = True
        while True:
            # The first answer may wait on etcd (registering the host), which
            # can take a few of etcd's own deadlines while a member fails over.
            bound = self.silence * CONNECT_FACTOR if first else self.silence
            try:
                msg = await asyncio.wait_for(call.read(), bound)
            except asyncio.TimeoutError:
                raise ControllerSilent(f"no message for {bound:.0f}s") from None
            if msg is grpc.aio.EOF:
                return
            if msg.WhichOneof("kind") != "update":
                continue  # a keepalive: the controller is there
            self.view.apply(msg.update)
            asked = self.view.resync_asked()
            if asked != self._resync_seen:
                self._resync_seen = asked
                if not first:  # a new stream re-sends everything anyway
                    self.resend()
            if first:
                first = False
                self.connected.set()
                log.info("connected to %s: %s at revision %d", address,
                         "snapshot" if msg.update.snapshot else "resumed", msg.update.revision)
            self.on_update()

    async def _messages(self):
        hello = pb.Hello(host=self.host.to_wire(), resume_revision=self.view.revision,
                         networks=sorted(self.view.networks()), containers=self.held_containers())
        yield pb.AgentMessage(hello=hello)
        # A new controller knows nothing of what was reported to the old one.
        for status in self._reported.values():
            yield pb.AgentMessage(status=status.to_wire())
        if self._reach is not None:
            yield pb.AgentMessage(reachability=self._reach.to_wire())
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        while True:
            # Heartbeats go out on time even while reports keep flowing.
            if loop.time() >= next_beat:
                next_beat = loop.time() + HEARTBEAT_SECONDS
                yield pb.AgentMessage(heartbeat=pb.Heartbeat(applied_revision=self.view.revision))
            try:
                message = await asyncio.wait_for(self._outbox.get(), max(0.0, next_beat - loop.time()))
            except asyncio.TimeoutError:
                continue
            if self.drop is not None and self.drop(message):
                continue
            yield message
