"""One controller leads a role at a time: an etcd key bound to its lease.

Every controller campaigns: it puts leaders/<role> with its name, bound to a
lease of its own, only if the key is absent. The winner renews the lease; a
controller that dies or loses etcd stops renewing, the key expires with the
lease and the next campaign wins within `ttl` and a poll. The key's mod
revision is the term's fence (controller/store/fence.py): the leader's
writes compare it, so a leader that lost its term and has not noticed yet
writes nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

from controller.etcd import Compare, Etcd, EtcdError, Op
from controller.keys import Keys
from controller.store.fence import Fence

log = logging.getLogger(__name__)

TTL = 5                 # seconds: how long a dead leader blocks the role
POLL = 1.0              # seconds between campaigns while another leads


class Election:
    def __init__(self, etcd: Etcd, keys: Keys, role: str, identity: str, ttl: int = TTL) -> None:
        self.etcd = etcd
        self.key = keys.leader(role)
        self.identity = identity
        self.ttl = ttl
        self.lease = 0

    async def campaign(self) -> Fence:
        """Wait until this controller leads; the fence of its term."""
        while True:
            try:
                fence = await self._try()
                if fence is not None:
                    log.info("leading %s (term %d)", self.key, fence.revision)
                    return fence
            except EtcdError as err:
                log.warning("campaign for %s: %s", self.key, err)
            await asyncio.sleep(POLL)

    async def _try(self) -> Fence | None:
        lease = await self.etcd.grant(self.ttl)
        result = await self.etcd.txn([Compare.absent(self.key)],
                                     [Op.put(self.key, self.identity.encode(), lease=lease)])
        if result.succeeded:
            self.lease = lease
            return Fence(self.key, result.revision)
        with contextlib.suppress(EtcdError):
            await self.etcd.revoke(lease)
        return None

    async def hold(self) -> None:
        """Renew the lease; return when the term is over (the lease is gone or
        could not be renewed for a whole `ttl`, after which etcd let it go)."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if await self.etcd.keepalive(self.lease) <= 0:
                    break
                renewed = loop.time()
            except EtcdError as err:
                log.warning("renewing the lead of %s: %s", self.key, err)
                if loop.time() - renewed >= self.ttl:
                    break
        log.warning("no longer leading %s", self.key)
        self.lease = 0

    async def resign(self) -> None:
        """Step down at once (a clean stop): the next controller need not wait for the ttl."""
        if self.lease:
            with contextlib.suppress(EtcdError):
                await self.etcd.revoke(self.lease)
            self.lease = 0
