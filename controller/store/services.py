"""Services: their records. The tasks are containers (containers.py, removal.py)
that the leading controller writes under its fence (controller/services/).

A service record changes only by the user's hand (create, scale, rm); the
leader reads it and makes the tasks follow, so a scale is one guarded put,
whichever controller takes it and whichever leads.
"""
from __future__ import annotations

import dataclasses
import time

from controller import drivers
from controller.etcd import Compare, Op, Txn
from controller.store import allocations
from controller.store.fence import Fence
from controller.store.records import Records, json_value
from controller.store.transaction import ALLOCATION_ATTEMPTS, Commit, Settled, retrying, surface_unavailable
from proto.errors import AlreadyExists, FailedPrecondition, NotFound
from proto.records import ServiceSpec, ServiceVip


class Services:
    def __init__(self, records: Records) -> None:
        self.records = records
        self.keys = records.keys
        self.etcd = records.etcd

    @surface_unavailable
    async def create(self, spec: ServiceSpec) -> ServiceSpec:
        """Write a new service and, in endpoint mode "vip", reserve its virtual IP on
        each network from the network's IPAM, like any address (the network then
        cannot be removed while the service holds it). Networks must span the
        cluster (an overlay): a VIP and the tasks behind it live on every host."""
        key = self.keys.service(spec.name)

        async def attempt(lost: int) -> Commit[ServiceSpec]:
            if await self.etcd.get(key) is not None:
                raise AlreadyExists(f"service {spec.name!r} already exists")
            txn = Txn([Compare.absent(key)])
            vips: dict[str, str] = {}
            for name in spec.networks:
                net_kv, network = await self.records.network(name)   # NotFound names it
                if network.scope != "global":
                    raise FailedPrecondition(
                        f"network {name!r} is a {network.driver} network, local to each host: a service's "
                        "tasks attach to networks that span the hosts (overlay)")
                txn.compares.append(Compare.mod_revision(net_kv.key, "=", net_kv.mod_revision))
                if spec.endpoint_mode == "vip":
                    directory = drivers.driver_for(network).reservations(self.keys, name, "")
                    vips[name] = await allocations.pick_address(self.records, directory, name, network.subnet,
                                                                network.gateway, randomize=lost > 0)
                    txn.compares.append(Compare.absent(directory + vips[name]))
                    txn.ops.append(Op.put(directory + vips[name], json_value({"service": spec.name, "id": spec.id})))
            created = dataclasses.replace(spec, virtual_ips=vips)
            txn.ops.append(Op.put(key, created.to_json()))
            return Commit(txn, created)

        return await retrying(self.etcd, attempt, what=f"create service {spec.name!r}",
                              changing="the addresses it needs", attempts=ALLOCATION_ATTEMPTS)

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
        """Delete the record, its VIPs and their load-balancer records; the leader then
        removes the tasks, which belong to nothing."""
        key = self.keys.service(name)

        async def attempt(_: int) -> Commit[ServiceSpec]:
            found = await self.records.record(key, ServiceSpec)
            if found is None:
                raise NotFound(f"service {name!r} not found")
            kv, spec = found
            ops = [Op.delete(key)]
            ops += [Op.delete(self.keys.ipam(network, vip)) for network, vip in spec.virtual_ips.items()]
            ops += [Op.delete(self.keys.vip(network, name)) for network in spec.networks]
            return Commit(Txn([Compare.mod_revision(key, "=", kv.mod_revision)], ops), spec)

        return await retrying(self.etcd, attempt, what=f"remove service {name!r}")

    @surface_unavailable
    async def vips(self) -> list[ServiceVip]:
        found, _ = await self.records.records(self.keys.vips_all(), ServiceVip)
        return [vip for _, vip in found]

    @surface_unavailable
    async def put_vip(self, vip: ServiceVip, fence: Fence) -> bool:
        """The leader's new backends of one VIP; False (nothing written) when the
        service was removed or replaced meanwhile (its record is the guard)."""
        key = self.keys.service(vip.service)

        async def attempt(_: int) -> Commit[bool] | Settled[bool]:
            await fence.check(self.etcd)
            found = await self.records.record(key, ServiceSpec)
            if found is None or found[1].id != vip.service_id:
                return Settled(False)
            return Commit(Txn([fence.compare, Compare.mod_revision(key, "=", found[0].mod_revision)],
                              [Op.put(self.keys.vip(vip.network, vip.service), vip.to_json())]), True)

        return await retrying(self.etcd, attempt, what=f"update the VIP of service {vip.service!r}")

    @surface_unavailable
    async def delete_vip(self, vip: ServiceVip, fence: Fence) -> None:
        """A VIP record whose service is gone (written by a pass that raced its removal)."""
        async def attempt(_: int) -> Commit[None]:
            await fence.check(self.etcd)
            return Commit(Txn([fence.compare], [Op.delete(self.keys.vip(vip.network, vip.service))]), None)

        await retrying(self.etcd, attempt, what=f"remove the VIP of service {vip.service!r}")
