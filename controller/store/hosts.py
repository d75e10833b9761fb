"""Hosts: registration and liveness.

A host's record says where it is (VTEP, API address, underlay MTU); whether
it is up is its alive/<name> key, bound to a lease its agent's heartbeats
renew, so a host whose controller stops hearing from it goes down by itself.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter

from controller.etcd import Compare, EtcdError, Op, Txn
from controller.host_view import host_view
from controller.store.records import Records, json_value
from controller.store.transaction import Commit, retrying, surface_unavailable
from proto import validate
from proto.addresses import UNDERLAY_FAMILIES, parse_ip
from proto.records import ContainerSpec, Endpoint, Host


class Hosts:
    def __init__(self, records: Records, controller_id: str) -> None:
        self.records = records
        self.keys = records.keys
        self.etcd = records.etcd
        self.controller_id = controller_id

    @surface_unavailable
    async def register(self, host: Host) -> None:
        """Record the host; `state` and `containers` are computed on read, not stored.

        A host that comes back with a new VTEP address gets all its endpoints
        re-pointed in the same transaction, so no host's table ever mixes the two.
        """
        validate.host_name(host.name)
        parse_ip(host.vtep, "VTEP address", UNDERLAY_FAMILIES)
        key = self.keys.host(host.name)
        record = dataclasses.replace(host, state="", containers=0, registered_at=time.time())

        async def attempt(_: int) -> Commit[None]:
            found = await self.records.record(key, Host)
            unchanged = Compare.absent(key) if found is None else Compare.mod_revision(key, "=", found[0].mod_revision)
            txn = Txn([unchanged], [Op.put(key, record.to_json())])
            if found is not None and found[1].vtep != host.vtep:
                endpoints, revision = await self.records.records(self.keys.endpoints_all(), Endpoint)
                txn.compares.append(Compare.prefix_unchanged_since(self.keys.endpoints_all(), revision))
                txn.ops += [Op.put(kv.key, dataclasses.replace(e, vtep=host.vtep).to_json())
                            for kv, e in endpoints if e.host == host.name]
            return Commit(txn, None)

        await retrying(self.etcd, attempt, what=f"register host {host.name!r}", changing="its record")

    @surface_unavailable
    async def get(self, name: str) -> Host:
        return (await self._shown([(await self.records.host(name))[1]]))[0]

    @surface_unavailable
    async def list_all(self) -> list[Host]:
        records, _ = await self.records.records(self.keys.hosts(), Host)
        return await self._shown([host for _, host in records])

    async def _shown(self, hosts: list[Host]) -> list[Host]:
        alive_kvs, _ = await self.etcd.get_prefix(self.keys.alive_all(), keys_only=True)
        alive = {self.keys.parse(kv.key)[1][0] for kv in alive_kvs}
        specs, _ = await self.records.records(self.keys.containers(), ContainerSpec)
        counts = Counter(spec.host for _, spec in specs)
        return [host_view(h, alive, counts[h.name]) for h in hosts]

    @surface_unavailable
    async def mark_alive(self, host: str, ttl: int) -> int:
        """Bind alive/<host> to a fresh lease: the key vanishes by itself if this
        controller stops renewing it. Returns the lease id."""
        validate.host_name(host)
        lease = await self.etcd.grant(ttl)
        # A HostAlive record (proto/records.py); the rest says who holds the lease since when.
        value = json_value({"host": host, "controller": self.controller_id, "since": time.time()})
        try:
            await self.etcd.put(self.keys.alive(host), value, lease=lease)
        except BaseException:
            # Best effort: a lease we cannot revoke expires after `ttl` anyway.
            with contextlib.suppress(EtcdError):
                await self.etcd.revoke(lease)
            raise
        return lease

    @surface_unavailable
    async def keep_alive(self, lease_id: int) -> bool:
        """Renew; False once the lease is gone (the host was declared down)."""
        return await self.etcd.keepalive(lease_id) > 0

    @surface_unavailable
    async def mark_down(self, lease_id: int) -> None:
        await self.etcd.revoke(lease_id)
