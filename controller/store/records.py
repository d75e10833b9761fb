"""Reading records from etcd, decoded, with the key-value they came from (its
revision is what a transaction then guards on)."""
from __future__ import annotations

import json
from typing import TypeVar

from controller.etcd import KV, Etcd
from controller.keys import Keys
from proto.errors import NotFound
from proto.records import ContainerSpec, Host, Network, Record

R = TypeVar("R", bound=Record)


class CorruptRecord(Exception):
    """A value in etcd is not the JSON record its key says it is."""


def decode(kv: KV, cls: type[R]) -> R:
    try:
        return cls.from_json(kv.value)
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptRecord(f"etcd key {kv.key} does not hold a valid {cls.__name__}: {exc}") from exc


def owner_json(spec: ContainerSpec) -> bytes:
    """The value of an address or port reservation: who holds it, on which host."""
    return json_value({"container": spec.name, "host": spec.host, "id": spec.id})


def json_value(data: dict[str, object]) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


class Records:
    def __init__(self, etcd: Etcd, keys: Keys) -> None:
        self.etcd = etcd
        self.keys = keys

    async def records(self, prefix: str, cls: type[R]) -> tuple[list[tuple[KV, R]], int]:
        """Every record under `prefix` with its KV, and the revision of the read."""
        kvs, revision = await self.etcd.get_prefix(prefix)
        return [(kv, decode(kv, cls)) for kv in kvs], revision

    async def record(self, key: str, cls: type[R]) -> tuple[KV, R] | None:
        kv = await self.etcd.get(key)
        return None if kv is None else (kv, decode(kv, cls))

    async def network(self, name: str) -> tuple[KV, Network]:
        return await self._named(self.keys.network(name), Network, f"network {name!r}")

    async def container(self, name: str) -> tuple[KV, ContainerSpec]:
        return await self._named(self.keys.container(name), ContainerSpec, f"container {name!r}")

    async def host(self, name: str) -> tuple[KV, Host]:
        return await self._named(self.keys.host(name), Host, f"host {name!r}")

    async def _named(self, key: str, cls: type[R], what: str) -> tuple[KV, R]:
        found = await self.record(key, cls)
        if found is None:
            raise NotFound(f"{what} not found")
        return found
