"""Controllers: each one's record of itself, bound to a lease of its own.

A controller writes controllers/<its name> with what it listens on and the
etcd cluster it uses (proto.records.ControllerInfo); agents keep their
containers off those addresses. The lease makes the record vanish by itself
when the controller stops renewing it, so the agents' guards follow
controllers as they come and go.
"""
from __future__ import annotations

import contextlib

from controller.etcd import EtcdError
from controller.store.records import Records
from controller.store.transaction import surface_unavailable
from proto.records import ControllerInfo


class Controllers:
    def __init__(self, records: Records) -> None:
        self.records = records
        self.keys = records.keys
        self.etcd = records.etcd

    @surface_unavailable
    async def announce(self, record: ControllerInfo, ttl: int) -> int:
        """Write the record bound to a fresh lease of `ttl` seconds; returns the lease id."""
        lease = await self.etcd.grant(ttl)
        try:
            await self.update(record, lease)
        except BaseException:
            # Best effort: a lease we cannot revoke expires after `ttl` anyway.
            with contextlib.suppress(EtcdError):
                await self.etcd.revoke(lease)
            raise
        return lease

    @surface_unavailable
    async def update(self, record: ControllerInfo, lease: int) -> None:
        """Rewrite the record (the etcd cluster changed), still bound to `lease`."""
        await self.etcd.put(self.keys.controller(record.name), record.to_json(), lease=lease)

    @surface_unavailable
    async def keep_alive(self, lease: int) -> bool:
        """Renew; False once the lease is gone (and the record with it)."""
        return await self.etcd.keepalive(lease) > 0

    @surface_unavailable
    async def withdraw(self, lease: int) -> None:
        """The controller stops: its record goes at once."""
        await self.etcd.revoke(lease)
