"""Services: their records. The tasks are containers (containers.py, removal.py)
that the leading controller writes under its fence (controller/services/).

A service record changes only by the user's hand (create, scale, rm); the
leader reads it and makes the tasks follow, so a scale is one guarded put,
whichever controller takes it and whichever leads.
"""
from __future__ import annotations

import dataclasses
import time

from controller.etcd import Compare, Op, Txn
from controller.store.records import Records
from controller.store.transaction import Commit, retrying, surface_unavailable
from proto.errors import AlreadyExists, FailedPrecondition, NotFound
from proto.records import ServiceSpec


class Services:
    def __init__(self, records: Records) -> None:
        self.records = records
        self.keys = records.keys
        self.etcd = records.etcd

    @surface_unavailable
    async def create(self, spec: ServiceSpec) -> ServiceSpec:
        """Write a new service; its networks must exist (and exist still when it commits)."""
        key = self.keys.service(spec.name)

        async def attempt(_: int) -> Commit[ServiceSpec]:
            if await self.etcd.get(key) is not None:
                raise AlreadyExists(f"service {spec.name!r} already exists")
            compares = [Compare.absent(key)]
            for network in spec.networks:
                await self.records.network(network)   # NotFound names it
                compares.append(Compare.exists(self.keys.network(network)))
            return Commit(Txn(compares, [Op.put(key, spec.to_json())]), spec)

        return await retrying(self.etcd, attempt, what=f"create service {spec.name!r}")

    @surface_unavailable
    async def get(self, name: str) -> ServiceSpec:
        found = await self.records.record(self.keys.service(name), ServiceSpec)
        if found is None:
            raise NotFound(f"service {name!r} not found")
        return found[1]

    @surface_unavailable
    async def list_all(self) -> list[ServiceSpec]:
        found, _ = await self.records.records(self.keys.services(), ServiceSpec)
        return [spec for _, spec in found]

    @surface_unavailable
    async def scale(self, name: str, replicas: int) -> ServiceSpec:
        key = self.keys.service(name)

        async def attempt(_: int) -> Commit[ServiceSpec]:
            found = await self.records.record(key, ServiceSpec)
            if found is None:
                raise NotFound(f"service {name!r} not found")
            kv, spec = found
            if spec.mode != "replicated":
                raise FailedPrecondition(f"service {name!r} runs in {spec.mode} mode: only a replicated "
                                         "service can be scaled")
            updated = dataclasses.replace(spec, replicas=replicas, updated_at=time.time())
            return Commit(Txn([Compare.mod_revision(key, "=", kv.mod_revision)],
                              [Op.put(key, updated.to_json())]), updated)

        return await retrying(self.etcd, attempt, what=f"scale service {name!r}")

    @surface_unavailable
    async def remove(self, name: str) -> ServiceSpec:
        """Delete the record; the leader then removes the tasks, which belong to nothing."""
        key = self.keys.service(name)

        async def attempt(_: int) -> Commit[ServiceSpec]:
            found = await self.records.record(key, ServiceSpec)
            if found is None:
                raise NotFound(f"service {name!r} not found")
            kv, spec = found
            return Commit(Txn([Compare.mod_revision(key, "=", kv.mod_revision)], [Op.delete(key)]), spec)

        return await retrying(self.etcd, attempt, what=f"remove service {name!r}")
