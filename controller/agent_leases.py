"""One etcd lease for every agent connected to this controller.

A host's agent counts as connected while its agents/<host> key exists
(controller/liveness.py). That key must go when the agent's heartbeats stop
for `ttl` seconds (a crashed agent, a cut stream) and when its controller
dies. A lease per agent gives both, but costs a renewal per agent every few
seconds, which with hundreds of agents was most of a controller's idle time.
So every agent's key here is bound to one lease of the controller's own,
renewed every RENEW_FRACTION of the TTL by a task that does nothing else:
the controller dying, the lease expires and takes every key with it, as
before. What the lease no longer does per agent, the sweep does: once a
second it deletes the key of every host whose last heartbeat is more than
`ttl` old (its stream open or ended), in a transaction guarded on the key's
revision as this controller wrote it, so an agent that connected again
since, here or to another controller, keeps its newer key. A host is thus
"agent down" `ttl` after its agent's last heartbeat, as it was with a lease
of its own.

When the lease is found expired (the controller's loop stalled longer than
the TTL), a fresh one is granted and every key held under the old one
written again. When it cannot be renewed at all (etcd unreachable from
here), every stream is ended with that error, so the agents go to a
controller that can (the same effect as each agent's renewal failing before).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from controller.etcd import EtcdError
from controller.store import Store
from controller.store.hosts import MARKS_PER_TXN
from proto.errors import UserError
from proto.records import Reachability

log = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
# The lease is renewed this often, as a fraction of its TTL: one lease, so
# often is cheap, and the controller's loop may stall for most of the TTL
# (a busy machine) without losing it.
RENEW_FRACTION = 1 / 6
# A sweep's timer firing this many sweep periods late means the event loop
# was stalled: heartbeats may be waiting unread in the streams, so nobody is
# judged on them by this sweep.
STALLED_SWEEPS = 2.0
# Keys written or deleted at once (after the lease expired; by one sweep).
CONCURRENCY = 32


@dataclass(eq=False)
class Holding:
    """One agent's stream as the leases see it."""
    host: str
    last_beat: float
    revision: int = 0       # mod revision of agents/<host> as written here; 0: not held now
    lease: int = 0          # the lease it was written under
    reach: Reachability | None = None
    ended: bool = False
    # Set with the error when the controller's lease cannot be renewed: the stream must end.
    lost: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def held(self) -> bool:
        return self.revision != 0


class AgentLeases:
    def __init__(self, store: Store, ttl: int, sweep: float = SWEEP_SECONDS):
        self.store = store
        self.ttl = ttl
        self.sweep_seconds = sweep
        self.lease = 0
        self._holdings: dict[str, Holding] = {}
        self._granting = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    # ---- what a stream does ---------------------------------------------------

    async def attach(self, host: str) -> Holding:
        """The agent of `host` connected: its key written under the lease."""
        self._start()
        holding = Holding(host, asyncio.get_running_loop().time())
        await self._mark(holding)
        # An older stream of the same host (here) is replaced: its key was just rewritten.
        self._holdings[host] = holding
        return holding

    def beat(self, holding: Holding) -> bool:
        """A heartbeat came; False when the host's key was deleted meanwhile
        (`remark` brings it back). Costs no etcd call."""
        holding.last_beat = asyncio.get_running_loop().time()
        return holding.held

    async def remark(self, holding: Holding) -> None:
        """Write the key (and the last reach report) again, after a lapse."""
        await self._mark(holding)
        if holding.reach is not None:
            await self.store.put_reach(holding.reach, holding.lease)
        if not holding.ended:
            self._holdings[holding.host] = holding

    async def put_reach(self, holding: Holding, report: Reachability) -> None:
        """Record what the host's probes found; it goes with the host's key."""
        holding.reach = report
        await self.store.put_reach(report, holding.lease or await self._lease())

    def detach(self, holding: Holding) -> None:
        """The stream ended. The key stays until `ttl` after the last heartbeat,
        so an agent that restarts within it never shows as down."""
        holding.ended = True
        if not holding.held and self._holdings.get(holding.host) is holding:
            del self._holdings[holding.host]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- the lease ------------------------------------------------------------

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._renewing(), name="agent-lease-renewal"),
                           asyncio.create_task(self._sweeping(), name="agent-lease-sweep")]

    async def _lease(self) -> int:
        async with self._granting:
            if not self.lease:
                self.lease = await self.store.grant_lease(self.ttl)
            return self.lease

    async def _mark(self, holding: Holding) -> None:
        """Write agents/<host> under the lease; a lease found gone is replaced once."""
        for attempt in (1, 2):
            lease = await self._lease()
            try:
                holding.revision = await self.store.mark_connected(holding.host, lease)
                holding.lease = lease
                return
            except EtcdError as err:
                if "lease not found" not in str(err) or attempt == 2:
                    raise
                self._expired(lease)

    def _expired(self, lease: int) -> None:
        """`lease` is gone, and every key under it: a new lease for what comes
        next, and every holding under the old one written again, in the background."""
        if self.lease == lease:
            self.lease = 0
        stale = [h for h in self._holdings.values() if h.lease == lease and h.held]
        for holding in stale:
            holding.lease = 0   # taken: another report of the same expiry finds nothing to do
        for holding in [h for h in self._holdings.values() if h.ended and h in stale]:
            del self._holdings[holding.host]
        stale = [h for h in stale if not h.ended]
        if stale:
            log.warning("the agents' lease expired: marking %d agents connected again", len(stale))
            task = asyncio.create_task(self._remark_all(stale), name="agent-lease-remark")
            self._tasks.append(task)
            task.add_done_callback(lambda t: t in self._tasks and self._tasks.remove(t))

    async def _remark_all(self, holdings: list[Holding]) -> None:
        """Every key under a lost lease written again, fifty to a transaction:
        until they are back, the liveness keepers see those hosts' agents gone,
        and each host they turn "agent down" is a change for every stream."""
        for start in range(0, len(holdings), MARKS_PER_TXN):
            chunk = holdings[start:start + MARKS_PER_TXN]
            try:
                lease = await self._lease()
                revision = await self.store.mark_connected_many([(h.host, h.reach) for h in chunk], lease)
            except (UserError, EtcdError) as err:
                for holding in chunk:
                    holding.revision = 0   # its next heartbeat tries again (agent_link.py)
                log.warning("could not mark %d hosts connected again: %s", len(chunk), err)
                continue
            for holding in chunk:
                holding.revision, holding.lease = revision, lease
                if not holding.ended:
                    self._holdings[holding.host] = holding

    async def _renewing(self) -> None:
        while True:
            await asyncio.sleep(self.ttl * RENEW_FRACTION)
            await self.renew()

    async def renew(self) -> None:
        lease = self.lease
        if not lease:
            return
        try:
            alive = await self.store.keep_alive(lease)
        except (UserError, EtcdError) as err:
            log.warning("cannot renew the agents' lease: ending %d agents' streams: %s", len(self._holdings), err)
            if self.lease == lease:
                self.lease = 0
            holdings, self._holdings = list(self._holdings.values()), {}
            for holding in holdings:
                holding.revision = 0
                if not holding.lost.done():
                    holding.lost.set_exception(err)
                    holding.lost.exception()   # retrieved: a stream already gone never reads it
            return
        if not alive:
            self._expired(lease)

    # ---- the sweep ------------------------------------------------------------

    async def _sweeping(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asleep = loop.time()
            await asyncio.sleep(self.sweep_seconds)
            late = loop.time() - asleep - self.sweep_seconds
            if late > STALLED_SWEEPS * self.sweep_seconds:
                log.warning("the controller's loop stalled %.1fs: no agent judged on its heartbeats this time", late)
                continue
            await self.sweep(loop.time())

    async def sweep(self, now: float) -> None:
        """Delete the key of every host whose last heartbeat is older than the TTL."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def gone(holding: Holding) -> None:
            revision, holding.revision = holding.revision, 0
            try:
                async with gate:
                    deleted = await self.store.mark_gone(holding.host, revision)
            except (UserError, EtcdError) as err:
                holding.revision = revision   # etcd away: the next sweep tries again
                log.warning("could not mark host %s's agent gone: %s", holding.host, err)
                return
            if self._holdings.get(holding.host) is holding and not holding.held:
                del self._holdings[holding.host]   # back with `remark` if its agent beats again
            if deleted:   # else its agent connected again since, and keeps its newer key
                log.info("agent %s: no heartbeat for %.0fs%s: marked gone", holding.host,
                         now - holding.last_beat, " after its stream ended" if holding.ended else "")
        await asyncio.gather(*(gone(h) for h in list(self._holdings.values())
                               if h.held and now - h.last_beat > self.ttl))
