"""Every controller applies the liveness rule (controller/liveness.py) to every host.

The rule is first asked of the controller's mirror of etcd, which costs no
round trip; only a host whose alive/ record should change is settled in
etcd (`Store.settle`), where the rule runs again on what etcd holds and the
decision commits guarded on it. So every controller may run this at once:
they decide from the same state, and a decision is written once.
"""
from __future__ import annotations

import asyncio
import logging
import time

from controller import liveness
from controller.cache import StateCache
from controller.store import Store
from proto.errors import UserError

log = logging.getLogger(__name__)

# How often the rule is asked of the mirror. A host declared dead leaves the
# tables at most this long after its peers' reports say so.
PASS_SECONDS = 0.5


class LivenessKeeper:
    def __init__(self, store: Store, cache: StateCache, grace: float, period: float = PASS_SECONDS):
        self.store = store
        self.cache = cache
        self.grace = grace
        self.period = period

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            if not self.cache.healthy:
                continue   # the mirror may be stale: decide once it follows etcd again
            try:
                await self.run_pass()
            except Exception:  # noqa: BLE001 - the rule must outlive any one failure
                log.exception("liveness pass failed; the next one tries again")

    def due(self, now: float) -> list[str]:
        """The hosts whose alive/ record the rule would change, by the mirror."""
        index = self.cache.index
        counts = liveness.tally(index.connected, index.reach)
        due = []
        for host in sorted(h.name for h in index.hosts.values()):
            current = index.alive_records.get(host)
            evidence = liveness.evidence(host, index.connected, current, index.reach, counts)
            if liveness.judge(host, evidence, now, self.grace) is not current:
                due.append(host)
        return due

    async def run_pass(self) -> None:
        for host in self.due(time.time()):
            try:
                decided = await self.store.settle(host, self.grace)
            except UserError as err:  # etcd away or a lost race: the next pass tries again
                log.warning("could not settle the liveness of host %s: %s", host, err)
                continue
            state = "dead" if decided is None else "agent down" if decided.agent_down else "up"
            log.info("host %s: %s", host, state)
