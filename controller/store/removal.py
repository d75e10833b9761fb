"""Removing a container, in two steps: its spec and table rows at once, what it
holds once its host confirms.

The spec and the records its attachments wrote go first, so every host's
table drops the container at once. Its addresses, ports and status stay
until its agent reports the container gone: until then the old owner may
still use the address, and handing it to another container would make two
answer to it.
"""
from __future__ import annotations

import time

from controller import drivers
from controller.etcd import KV, Compare, Op, Txn
from controller.store import allocations
from controller.store.fence import Fence
from controller.store.records import Records
from controller.store.requests import Request, Requests
from controller.store.transaction import Commit, Settled, retrying, surface_unavailable
from proto.records import ContainerSpec, Network


async def spec_deletion(records: Records, kv: KV, spec: ContainerSpec) -> list[Op]:
    """The first step of a removal: the spec and the records its attachments wrote."""
    ops = [Op.delete(kv.key)]
    for network in spec.networks:
        found = await records.record(records.keys.network(network), Network)
        if found is not None:  # a network stays while anything is attached to it
            ops += [Op.delete(key) for key in drivers.driver_for(found[1]).row_keys(records.keys, network, spec.name)]
    return ops


class Removal:
    def __init__(self, records: Records, requests: Requests) -> None:
        self.records = records
        self.keys = records.keys
        self.etcd = records.etcd
        self.requests = requests

    @surface_unavailable
    async def delete(self, name: str, request_id: str = "", *, fence: Fence | None = None) -> ContainerSpec | None:
        """Drop the spec and the records its attachments wrote (every host's table
        loses them at once); see `release` for the rest. With `request_id`, a
        repeat of a removal already made returns None. A leader removing a
        service's task passes its `fence`."""
        async def attempt(_: int) -> Commit[ContainerSpec | None] | Settled[ContainerSpec | None]:
            if fence is not None:
                await fence.check(self.etcd)
            if await self.requests.get(request_id) is not None:
                return Settled(None)
            kv, spec = await self.records.container(name)
            ops = await spec_deletion(self.records, kv, spec)
            txn = Txn([Compare.mod_revision(kv.key, "=", kv.mod_revision)] + ([fence.compare] if fence else []), ops)
            if request_id:
                compares, request_ops = await self.requests.record(Request(request_id, "rm", name, spec.id, time.time()))
                txn.compares += compares
                txn.ops += request_ops
            return Commit(txn, spec)

        return await retrying(self.etcd, attempt, what=f"delete container {name!r}")

    @surface_unavailable
    async def release(self, name: str, host: str | None = None) -> bool:
        """Free a deleted container's addresses and ports and drop its status, once
        its host reported it gone. Returns False, releasing nothing, while the
        container still exists or when what it holds belongs to another `host`
        than the one reporting. Releasing twice is harmless.
        """
        key = self.keys.container(name)

        async def attempt(_: int) -> Commit[bool] | Settled[bool]:
            if await self.etcd.get(key) is not None:
                return Settled(False)
            held = [(k, owner) for k, owner in await allocations.held(self.records) if owner.get("container") == name]
            if host is not None and any(owner.get("host") != host for _, owner in held):
                return Settled(False)
            ops = [Op.delete(self.keys.status(name))] + [Op.delete(k) for k, _ in held]
            return Commit(Txn([Compare.absent(key)], ops), True)

        return await retrying(self.etcd, attempt, what=f"release container {name!r}")

    @surface_unavailable
    async def pending(self, host: str | None = None) -> list[str]:
        """Deleted containers still holding a status or addresses, e.g. because a
        controller restart missed the agent's report. With `host`: those whose
        addresses were on that host, plus leftovers holding no address at all
        (their network was removed), which any host may release."""
        # Only the names matter here: with thousands of containers the values were most of the cost.
        specs, _ = await self.etcd.get_prefix(self.keys.containers(), keys_only=True)
        statuses, _ = await self.etcd.get_prefix(self.keys.statuses(), keys_only=True)
        existing = {self.keys.parse(kv.key)[1][0] for kv in specs}
        owners: dict[str, set[str]] = {self.keys.parse(kv.key)[1][0]: set() for kv in statuses}
        for _, owner in await allocations.held(self.records):
            owners.setdefault(owner.get("container", ""), set()).add(owner.get("host", ""))
        return sorted(
            name
            for name, hosts in owners.items()
            if name and name not in existing and (host is None or not hosts or hosts == {host})
        )
