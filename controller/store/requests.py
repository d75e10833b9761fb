"""Repeatable changes: the request ids clients send, recorded with the change.

A client that lost its answer (the controller died mid-call, the deadline
ran out) cannot tell whether its change was made. It sends each mutating
call with an id of its own, the same on every try; the change's
transaction also writes requests/<id> (guarded on its absence), saying what
the request did. A repeat finds it and gets the first call's result instead
of "already exists" or a second effect (a second restart).

Records are kept RETENTION_SECONDS at least: they share one etcd lease per
controller, granted anew every RETENTION_SECONDS / LEASE_BUCKETS, so their
number is bounded by what a cluster does in about that long.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass

from controller.etcd import Compare, Op
from controller.store.records import Records
from controller.store.transaction import surface_unavailable
from proto.errors import InvalidArgument

RETENTION_SECONDS = 3600
LEASE_BUCKETS = 6
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class Request:
    """What one request did: its method, and the container (name and id) it made
    or changed; for a network's own calls, the network (name and id); for
    `network connect`/`disconnect`, the container and the network."""
    id: str
    method: str
    name: str
    container_id: str = ""
    at: float = 0.0
    network: str = ""
    network_id: str = ""

    def check_same(self, method: str, name: str, network: str = "") -> None:
        """A repeat must be the same call on the same things: an id reused for
        another one is refused rather than answered with the first's result."""
        if (self.method, self.name, self.network) != (method, name, network):
            raise InvalidArgument(f"request id {self.id!r} was used for {_what(self.method, self.name, self.network)}, "
                                  f"not {_what(method, name, network)}")


def _what(method: str, name: str, network: str) -> str:
    return f"`{method} {name}`" + (f" on network {network!r}" if network else "")


def check_id(request_id: str) -> str:
    if not REQUEST_ID.match(request_id):
        raise InvalidArgument(f"invalid request id {request_id[:80]!r}: 8 to 64 letters, digits, '-' or '_'")
    return request_id


class Requests:
    def __init__(self, records: Records) -> None:
        self.keys = records.keys
        self.etcd = records.etcd
        self._lease = 0
        self._granted = 0.0

    @surface_unavailable
    async def get(self, request_id: str) -> Request | None:
        """What the request did, if it was carried out (within the retention)."""
        if not request_id:
            return None
        kv = await self.etcd.get(self.keys.request(check_id(request_id)))
        if kv is None:
            return None
        data = json.loads(kv.value)
        fields = ("id", "method", "name", "container_id", "at", "network", "network_id")
        return Request(**{k: data[k] for k in fields if k in data})

    async def record(self, request: Request) -> tuple[list[Compare], list[Op]]:
        """The guard and the write that go into the change's own transaction:
        the change commits only if no other try of the same request did."""
        key = self.keys.request(check_id(request.id))
        value = json.dumps(asdict(request), sort_keys=True).encode()
        return [Compare.absent(key)], [Op.put(key, value, lease=await self._current_lease())]

    async def _current_lease(self) -> int:
        now = time.monotonic()
        if not self._lease or now - self._granted > RETENTION_SECONDS / LEASE_BUCKETS:
            self._lease = await self.etcd.grant(RETENTION_SECONDS + RETENTION_SECONDS // LEASE_BUCKETS)
            self._granted = now
        return self._lease
