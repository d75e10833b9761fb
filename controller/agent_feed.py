"""One agent's outgoing messages: its view's updates, keepalives, and a bound.

A feed turns the shared state cache into the messages one agent's stream
sends: a snapshot or a resumed delta first, then a delta per etcd revision
that touches the agent, and a keepalive whenever nothing else went out for
KEEPALIVE_SECONDS (so the agent can tell a silent controller from a quiet
cluster). The messages wait in a queue of at most `limit` entries. An agent
that stops reading fills it; from then on the feed computes nothing for that
agent, and once the agent drains its queue it gets one fresh snapshot
instead of every delta it missed. So a stuck agent costs a bounded amount of
memory and never delays anybody else, and catching up is one message.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from controller.cache import ScopedBatch, StateCache
from controller import wire_changes
from controller.view import AgentView, Change
from proto import vxmesh_pb2 as pb

log = logging.getLogger(__name__)

# How long the controller stays silent on a stream at most; agents give up
# on a controller after two and a half of these (agent/link.py
# SILENCE_SECONDS). A keepalive costs a wakeup and a write per idle stream,
# a thousand a second with a thousand agents at one second.
KEEPALIVE_SECONDS = 2.0
# Messages queued for one agent at most, on top of what gRPC has in flight.
QUEUE_LIMIT = 256
# How long the controller waits for its cache to reach a revision an agent
# already has (the agent came from a controller that was ahead of this one).
CATCH_UP_SECONDS = 2.0


@dataclass
class FeedCounters:
    """What the controller's feeds have served since it started (see Health)."""
    snapshots: int = 0     # first updates that were a whole snapshot
    resumes: int = 0       # first updates that were a delta from the agent's revision
    resyncs: int = 0       # agents that fell too far behind, each sent a fresh snapshot
    connected: int = 0     # streams open now


class AgentFeed:
    def __init__(self, host: str, hello: pb.Hello, cache: StateCache, counters: FeedCounters,
                 limit: int = QUEUE_LIMIT, keepalive: float = KEEPALIVE_SECONDS):
        self.host = host
        self.hello = hello
        self.cache = cache
        self.counters = counters
        self.limit = limit
        self.keepalive = keepalive
        # Updates are queued serialized (wire_changes.py), keepalives as messages.
        self._queue: deque[pb.ControllerMessage | bytes] = deque()
        # Set when the queue gains an entry / loses one.
        self._filled = asyncio.Event()
        self._drained = asyncio.Event()
        self._interrupted = False

    async def next(self) -> pb.ControllerMessage | bytes | None:
        """The next message to send, waiting for one; None once `interrupt` was called."""
        while not self._queue or self._interrupted:
            if self._interrupted:
                return None
            self._filled.clear()
            await self._filled.wait()
        message = self._queue.popleft()
        self._drained.set()
        return message

    def interrupt(self, *_: object) -> None:
        """Make `next` return None (now, or as soon as it is waiting): the stream
        ends. A done-callback, so the stream's handler waits for its next message
        and for the end of its other tasks in one await, without a task per message."""
        self._interrupted = True
        self._filled.set()

    def _put(self, message: pb.ControllerMessage | bytes) -> None:
        self._queue.append(message)
        self._filled.set()

    def _full(self) -> bool:
        return len(self._queue) >= self.limit

    async def run(self) -> None:
        """Fill the queue until cancelled (when the stream ends)."""
        view, update, revision = await self._first_update()
        self._put(update)
        # Woken only by the batches that may concern this agent (controller/interest.py).
        interest = self.cache.router.add(self.host, view.networks)
        try:
            while True:
                if self._full():
                    revision = await self._resync_when_drained()
                    view = AgentView(self.host, self.cache.index)
                    self._put(_snapshot(revision, view))
                    self.cache.router.update(interest, view.networks)
                    continue
                moved = await self.cache.wait_relevant(interest, revision, self.keepalive)
                if not moved:
                    if not self._queue:  # the agent has nothing to read: tell it we are here
                        self._put(pb.ControllerMessage(heartbeat=pb.Heartbeat(applied_revision=revision)))
                    continue
                batches = self.cache.scoped_batches_since(revision)
                if batches is None:  # the history no longer reaches back to this agent's revision
                    view = AgentView(self.host, self.cache.index)
                    revision = self.cache.revision
                    self.counters.resyncs += 1
                    self._put(_snapshot(revision, view))
                    self.cache.router.update(interest, view.networks)
                    continue
                changes = _replay(view, batches)
                revision = self.cache.revision
                self.cache.router.update(interest, view.networks)
                if changes:
                    self._put(_update(revision, changes))
        finally:
            self.cache.router.remove(interest)

    async def _resync_when_drained(self) -> int:
        """The agent stopped reading: wait until it has read everything queued,
        and return the revision its snapshot will be taken at."""
        log.warning("agent %s is %d messages behind: pausing its updates; it gets a snapshot "
                    "once it reads again", self.host, len(self._queue))
        self.counters.resyncs += 1
        while self._queue:
            self._drained.clear()
            await self._drained.wait()
        log.info("agent %s reads again: sending a fresh snapshot", self.host)
        return self.cache.revision

    async def _first_update(self) -> tuple[AgentView, bytes, int]:
        resume = self.hello.resume_revision
        if resume > 0:
            if resume > self.cache.revision:
                await self.cache.wait_until(lambda: self.cache.revision >= resume, CATCH_UP_SECONDS)
            batches = self.cache.scoped_batches_since(resume)
            if batches is not None and resume <= self.cache.revision:
                view = AgentView(self.host, self.cache.index, self.hello.networks)
                changes = _replay(view, batches)
                changes += view.sync_membership()
                self.counters.resumes += 1
                return view, _update(self.cache.revision, changes), self.cache.revision
        view = AgentView(self.host, self.cache.index)
        self.counters.snapshots += 1
        return view, _snapshot(self.cache.revision, view), self.cache.revision


def _replay(view: AgentView, batches: list[ScopedBatch]) -> list[Change]:
    """The view's changes for the batches, skipping those whose scope leaves it out.
    Asked batch by batch: a batch may change the networks the view holds."""
    changes: list[Change] = []
    for _, events, scope in batches:
        if scope.concerns(view.host, view.networks):
            changes += view.changes(events)
    return changes


def _snapshot(revision: int, view: AgentView) -> bytes:
    return wire_changes.SHARED.snapshot_bytes(revision, view)


def _update(revision: int, changes: list[Change], snapshot: bool = False) -> bytes:
    # Encoded once per record for every stream, and sent as bytes (wire_changes.py).
    return wire_changes.SHARED.update_bytes(revision, changes, snapshot)
