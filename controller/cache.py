"""One etcd watch feeding every agent stream (the fan-out of the controller).

The cache reads the whole prefix once, then follows a single watch. It keeps
a bounded history of decoded events, so a stream that fell behind, or an
agent that reconnects with the revision it last applied, replays just what
it missed. A stream that asks for a revision older than the history gets a
fresh snapshot instead. Streams pull from the cache at their own pace: a
slow agent never holds up the others.

A (re)started controller rebuilds that history from etcd's own: it loads the
state as it was `preload` revisions ago and replays the watch from there, so
agents that reconnect after a controller restart resume with a delta instead
of downloading everything again.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
from typing import Callable

from controller.etcd import Compacted, Etcd, EtcdUnavailable
from controller.index import Index, StateEvent
from controller.interest import Interest, InterestRouter, Scope
from controller.keys import Keys

log = logging.getLogger(__name__)

Batch = tuple[int, list[StateEvent]]
ScopedBatch = tuple[int, list[StateEvent], Scope]

# How often the watch asks etcd for a progress notification (the current
# revision, with no events): the longest an idle, working watch goes unnoticed.
PROGRESS_SECONDS = 1.0


class StateCache:
    def __init__(self, etcd: Etcd, keys: Keys, history_limit: int = 100_000, preload: int = 10_000):
        self.etcd = etcd
        self.keys = keys
        self.history_limit = history_limit
        self.preload = preload
        self.index = Index(keys)
        self.revision = 0
        # Replays can start from any revision >= floor.
        self.floor = 0
        self.healthy = False
        self._revs: list[int] = []
        self._batches: list[list[StateEvent]] = []
        self._scopes: list[Scope] = []    # which streams each batch may concern
        self._events_kept = 0
        # Resolved at the next change, then replaced: every waiter (one per
        # agent stream, plus API calls) awaits the same future, so a change
        # wakes them all without a lock, a task or a timer per waiter.
        self._moved: asyncio.Future | None = None
        # The agent streams, woken only by the batches that concern them.
        self.router = InterestRouter()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self._load()
        self._task = asyncio.create_task(self._follow(), name="state-cache-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def batches_since(self, revision: int) -> list[Batch] | None:
        """The batches after `revision`, or None when they are no longer kept."""
        if revision < self.floor:
            return None
        start = bisect.bisect_right(self._revs, revision)
        return list(zip(self._revs[start:], self._batches[start:]))

    def scoped_batches_since(self, revision: int) -> list[ScopedBatch] | None:
        """As `batches_since`, each batch with the streams it may concern."""
        if revision < self.floor:
            return None
        start = bisect.bisect_right(self._revs, revision)
        return list(zip(self._revs[start:], self._batches[start:], self._scopes[start:]))

    async def wait_beyond(self, revision: int, timeout: float | None = None) -> bool:
        """Wait until the cache has moved past `revision`, or was reloaded."""
        return await self.wait_until(lambda: self.revision > revision or self.floor > revision, timeout)

    async def wait_relevant(self, interest: Interest, revision: int, timeout: float | None = None) -> bool:
        """Wait until a batch after `revision` may concern `interest`'s stream (or
        the history no longer reaches back to `revision`); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not interest.relevant and self.floor <= revision:
            if deadline is not None:
                if loop.time() >= deadline:
                    return False
                # One timer kept per stream rather than one armed and cancelled
                # per wait: with a hundred streams woken on every change, those
                # timers were a good part of the fan-out's cost.
                interest.wake_by(loop, deadline)
            interest.woken.clear()
            await interest.woken.wait()
        # Cleared before the stream reads the batches, with no await in between,
        # so a batch arriving later marks it again.
        interest.relevant = False
        interest.woken.clear()
        return True

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until `predicate()` holds, checked after every change; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            if self._moved is None or self._moved.done():
                self._moved = loop.create_future()
            # asyncio.wait, unlike wait_for, neither wraps the future in a task
            # nor cancels the shared future when this waiter times out.
            await asyncio.wait((self._moved,), timeout=remaining)
        return True

    async def _load(self) -> None:
        kvs, revision = await self.etcd.get_prefix(self.keys.prefix)
        past = max(1, revision - self.preload)
        if past < revision:
            try:
                # The watch in _follow replays past+1..now into the history.
                kvs, revision = (await self.etcd.get_prefix(self.keys.prefix, revision=past))[0], past
            except Compacted:
                pass  # etcd no longer has it: start from now, without a history
        index = Index(self.keys)
        index.load(kvs)
        self.index = index
        self._revs, self._batches, self._scopes, self._events_kept = [], [], [], 0
        self.revision = self.floor = revision
        self.healthy = True
        self.router.wake_all()  # every stream needs a fresh snapshot
        await self._notify()

    async def _follow(self) -> None:
        backoff = 0.1
        while True:
            try:
                # Progress notifications mark a re-established watch healthy
                # at once, also when nothing changes for a while after an
                # etcd outage (the first event could be minutes away).
                async for revision, events in self.etcd.watch(self.keys.prefix, self.revision + 1,
                                                              progress_interval=PROGRESS_SECONDS):
                    decoded = self.index.apply(events)
                    self._record(revision, decoded, self.router.route(decoded))
                    self.healthy = True
                    backoff = 0.1
                    await self._notify()
            except Compacted:
                log.warning("watch revision %d was compacted: reloading the state", self.revision + 1)
                await self._reload_later()
            except EtcdUnavailable as err:
                self.healthy = False
                log.warning("etcd watch lost (%s); retrying in %.1fs", err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _reload_later(self) -> None:
        while True:
            try:
                await self._load()
                return
            except EtcdUnavailable as err:
                self.healthy = False
                log.warning("cannot reload state from etcd: %s", err)
                await asyncio.sleep(1.0)

    def _record(self, revision: int, events: list[StateEvent], scope: Scope) -> None:
        if revision > self.revision:
            self.revision = revision
        if not events:
            return  # a progress notification: the revision moved, nothing to replay
        self._revs.append(revision)
        self._batches.append(events)
        self._scopes.append(scope)
        self._events_kept += len(events)
        if self._events_kept > self.history_limit:
            self._trim()

    def _trim(self) -> None:
        """Drop the older half of the history; replays from before it get snapshots."""
        cut = len(self._revs) // 2 or 1
        self.floor = self._revs[cut - 1]
        # A stream nothing concerned for a while may hold a revision below the
        # new floor: it looks now (and finds nothing for it) rather than later
        # needing a whole snapshot for changes it never cared about.
        self.router.wake_all()
        self._events_kept -= sum(len(b) for b in self._batches[:cut])
        del self._revs[:cut], self._batches[:cut], self._scopes[:cut]

    async def _notify(self) -> None:
        if self._moved is not None and not self._moved.done():
            self._moved.set_result(None)
