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
from proto.addresses import mac_for_ip
from proto.records import MESH_LEG_PREFIX, Endpoint, Network, ServiceSpec, ServiceVip, mesh_leg


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
            others, read_at = await self.records.records(self.keys.services(), ServiceSpec)
            _check_published(spec, [other for _, other in others])
            # No other service took one of its ports meanwhile.
            txn = Txn([Compare.absent(key), Compare.prefix_unchanged_since(self.keys.services(), read_at)])
            await self._check_containers_ports(spec, txn)
            vips = await self._reserve_vips(spec, spec.networks, txn, lost)
            created = dataclasses.replace(spec, virtual_ips=vips)
            txn.ops.append(Op.put(key, created.to_json()))
            return Commit(txn, created)

        return await retrying(self.etcd, attempt, what=f"create service {spec.name!r}",
                              changing="the addresses it needs", attempts=ALLOCATION_ATTEMPTS)

    async def _check_containers_ports(self, spec: ServiceSpec, txn: Txn) -> None:
        """The routing mesh opens its ports on every host: none may be a container's
        published port on any host (nor become one before `txn` commits)."""
        if spec.publish_mode != "ingress" or not spec.ports:
            return
        held, read_at = await allocations.container_ports(self.records)
        for port in spec.ports:
            owner = held.get((port.protocol, port.host_port))
            if owner is not None:
                raise FailedPrecondition(f"port {port.host_port}/{port.protocol} is already published by container "
                                         f"{owner[0]!r} on host {owner[1]!r}: the routing mesh needs it on every host")
        txn.compares.append(Compare.prefix_unchanged_since(self.keys.ports_all(), read_at))

    async def _reserve_vips(self, spec: ServiceSpec, networks: list[str], txn: Txn, lost: int) -> dict[str, str]:
        """Check that each of `networks` spans the cluster, guard it in `txn`, and in
        endpoint mode "vip" reserve the service's address on it there; the VIPs."""
        vips: dict[str, str] = {}
        for name in networks:
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
        return vips

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
    async def update(self, name: str, change) -> ServiceSpec:
        """Apply `change(spec) -> spec` to the record (a rolling update, a new replica count):
        published ports checked against the other services', VIPs given back on the
        networks it leaves and reserved on those it joins."""
        key = self.keys.service(name)

        async def attempt(lost: int) -> Commit[ServiceSpec]:
            found = await self.records.record(key, ServiceSpec)
            if found is None:
                raise NotFound(f"service {name!r} not found")
            kv, spec = found
            updated = change(spec)
            txn = Txn([Compare.mod_revision(key, "=", kv.mod_revision)], [])
            if (updated.ports, updated.publish_mode) != (spec.ports, spec.publish_mode):
                others, read_at = await self.records.records(self.keys.services(), ServiceSpec)
                _check_published(updated, [other for _, other in others if other.name != name])
                txn.compares.append(Compare.prefix_unchanged_since(self.keys.services(), read_at))
                await self._check_containers_ports(updated, txn)
            # A network left gives its VIP back at once (its tasks leave it batch by
            # batch); a network joined gets one, as at creation.
            gone = [n for n in spec.networks if n not in updated.networks]
            vips = {n: vip for n, vip in spec.virtual_ips.items() if n not in gone}
            txn.ops += [Op.delete(self.keys.ipam(n, spec.virtual_ips[n])) for n in gone if n in spec.virtual_ips]
            txn.ops += [Op.delete(self.keys.vip(n, name)) for n in gone]
            vips.update(await self._reserve_vips(
                updated, [n for n in updated.networks if n not in spec.networks], txn, lost))
            updated = dataclasses.replace(updated, virtual_ips=vips, updated_at=time.time())
            txn.ops.append(Op.put(key, updated.to_json()))
            return Commit(txn, updated)

        return await retrying(self.etcd, attempt, what=f"update service {name!r}",
                              changing="the addresses it needs", attempts=ALLOCATION_ATTEMPTS)

    @surface_unavailable
    async def set_update_state(self, service: ServiceSpec, state: str, message: str, fence: Fence) -> None:
        """The leader's word on a rollout; nothing when the service changed meanwhile
        (another update started: its own rollout decides)."""
        key = self.keys.service(service.name)

        async def attempt(_: int) -> Commit[None] | Settled[None]:
            await fence.check(self.etcd)
            found = await self.records.record(key, ServiceSpec)
            if found is None or found[1].id != service.id or found[1].version != service.version:
                return Settled(None)
            updated = dataclasses.replace(found[1], update_state=state, update_message=message)
            return Commit(Txn([fence.compare, Compare.mod_revision(key, "=", found[0].mod_revision)],
                              [Op.put(key, updated.to_json())]), None)

        await retrying(self.etcd, attempt, what=f"record the update of service {service.name!r}")

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

    @surface_unavailable
    async def legs(self) -> list[Endpoint]:
        """Every host's mesh legs: the endpoints named _mesh.<host>."""
        found, _ = await self.records.records(self.keys.endpoints_all(), Endpoint)
        return [e for _, e in found if e.container.startswith(MESH_LEG_PREFIX)]

    @surface_unavailable
    async def add_leg(self, network: str, host: str, fence: Fence) -> Endpoint:
        """Give `host` an address on `network` for the routing mesh, and the endpoint
        row every member's table then carries (replies from the tasks find it)."""
        key = self.keys.endpoint(network, mesh_leg(host))

        async def attempt(lost: int) -> Commit[Endpoint]:
            await fence.check(self.etcd)
            net_kv, net = await self.records.network(network)
            host_kv, record = await self.records.host(host)
            directory = drivers.driver_for(net).reservations(self.keys, network, host)
            # From the top of the subnet: a leg's address (and the MAC made from it) is not
            # one a container just had, which other hosts' bridges may still place elsewhere.
            ip = await allocations.pick_address(self.records, directory, network, net.subnet, net.gateway,
                                                randomize=lost > 0, descending=True)
            leg = Endpoint(network=network, container=mesh_leg(host), host=host, vtep=record.vtep, ip=ip,
                           mac=mac_for_ip(ip))
            txn = Txn([fence.compare, Compare.absent(key), Compare.absent(directory + ip),
                       Compare.mod_revision(net_kv.key, "=", net_kv.mod_revision),
                       Compare.mod_revision(host_kv.key, "=", host_kv.mod_revision)],
                      [Op.put(key, leg.to_json()),
                       Op.put(directory + ip, json_value({"mesh": host, "host": host}))])
            return Commit(txn, leg)

        return await retrying(self.etcd, attempt, what=f"add the mesh leg of {host!r} on {network!r}",
                              changing="the addresses it needs", attempts=ALLOCATION_ATTEMPTS)

    @surface_unavailable
    async def remove_leg(self, leg: Endpoint, fence: Fence) -> None:
        async def attempt(_: int) -> Commit[None]:
            await fence.check(self.etcd)
            found = await self.records.record(self.keys.network(leg.network), Network)
            ops = [Op.delete(self.keys.endpoint(leg.network, leg.container))]
            if found is not None:
                directory = drivers.driver_for(found[1]).reservations(self.keys, leg.network, leg.host)
                ops.append(Op.delete(directory + leg.ip))
            return Commit(Txn([fence.compare], ops), None)

        await retrying(self.etcd, attempt, what=f"remove the mesh leg of {leg.host!r} on {leg.network!r}")


def _check_published(spec: ServiceSpec, others: list[ServiceSpec]) -> None:
    """A port of the routing mesh is open on every host: one service per port, and no
    service publishing it where its tasks run (mode=host) either."""
    taken = {(p.protocol, p.host_port): other for other in others for p in other.ports
             if "ingress" in (spec.publish_mode, other.publish_mode)}
    for port in spec.ports:
        owner = taken.get((port.protocol, port.host_port))
        if owner is not None:
            where = " on every host (the routing mesh)" if owner.publish_mode == "ingress" else " where its tasks run"
            raise FailedPrecondition(f"port {port.host_port}/{port.protocol} is already published by "
                                     f"service {owner.name!r}{where}")
