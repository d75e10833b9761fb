"""Networks: create, list, inspect and remove, each as one etcd transaction.

What differs between drivers (what a network reserves, how its endpoints
are found, what its removal frees) is asked of its driver
(controller/drivers/); what every network shares is here: unique names,
subnets that do not overlap each other nor what the hosts use themselves
(their underlay, gwbridge and default bridge subnets, proto/records.py
Host.own_subnets) nor address space that is not unicast
(proto/addresses.py), and no removal while a running container is attached
(stopped ones leave it, as in Docker). Every
refusal comes before anything is written. With a request id, create and
remove are repeatable: the id is recorded in the change's own transaction
(requests.py), and a repeat gets the first call's result.
"""
from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Mapping

from controller import drivers
from controller.drivers.base import NetworkRequest
from controller.etcd import KV, Compare, Op, Txn
from controller.request_limits import check_labels
from controller.store.records import Records
from controller.store.requests import Request, Requests
from controller.store.transaction import Commit, Settled, retrying, surface_unavailable
from proto import validate
from proto.addresses import (
    DEFAULT_ADDRESS_POOLS,
    check_gateway,
    check_unicast,
    default_gateway,
    parse_ip_range,
    parse_subnet,
    subnet_clash,
    subnet_from_pools,
)
from proto.errors import AlreadyExists, FailedPrecondition, InvalidArgument


from proto.records import ContainerSpec, ContainerStatus, Endpoint, Host, Network, ServiceSpec


class Networks:
    def __init__(self, records: Records, requests: Requests,
                 address_pools: tuple[str, ...] = DEFAULT_ADDRESS_POOLS) -> None:
        self.records = records
        self.requests = requests
        self.keys = records.keys
        self.address_pools = address_pools   # where a network without --subnet gets one

    @surface_unavailable
    async def create(self, name: str, subnet: str, gateway: str = "", vni: int = 0,
                     driver: str = drivers.DEFAULT_DRIVER, options: Mapping[str, str] | None = None, *,
                     ip_range: str = "", internal: bool = False, attachable: bool = False,
                     labels: Mapping[str, str] | None = None, request_id: str = "") -> Network:
        """A network; without `subnet`, the first free one of the default address pools.
        With `request_id`, a repeat of a create already made returns that network."""
        validate.name("network", name)
        request = NetworkRequest(name, subnet, gateway, vni, driver, dict(options or {}))
        chosen, flags = drivers.for_create(request)
        asked = check_unicast(parse_subnet(subnet)) if subnet else None
        if asked is None and (gateway or ip_range):
            raise InvalidArgument("--gateway and --ip-range need --subnet")
        if asked is not None:
            gateway = check_gateway(asked, gateway) if gateway else default_gateway(asked)
            ip_range = str(parse_ip_range(ip_range, asked)) if ip_range else ""
        check_labels(labels or {})
        await chosen.check_create(request, flags)
        key = self.keys.network(name)

        async def attempt(_: int) -> Commit[Network] | Settled[Network]:
            done = await self.requests.get(request_id)
            if done is not None:
                return Settled(await self.made_by(done, name))
            existing, revision = await self.records.records(self.keys.networks(), Network)
            networks = {n.name: n for _, n in existing}
            if name in networks:
                raise AlreadyExists(f"network {name!r} already exists")
            hosts, hosts_read_at = await self.records.records(self.keys.hosts(), Host)
            taken = {f"network {n.name!r}": n.subnet for n in networks.values() if n.subnet}
            for _, host in hosts:
                taken.update(host.own_subnets())
            net = asked or subnet_from_pools(self.address_pools, taken)
            clash = subnet_clash(net, taken)
            if clash is not None:
                raise FailedPrecondition(clash)
            network, reserved = await chosen.reserve(self.records, Network(
                name=name, subnet=str(net), gateway=gateway or default_gateway(net), vni=vni, driver=chosen.name,
                scope=chosen.scope, id=secrets.token_hex(32), created_at=time.time(), ip_range=ip_range,
                internal=internal, attachable=attachable, labels=dict(labels or {})))
            txn = Txn([Compare.absent(key),
                       # Another controller may be adding an overlapping subnet right now,
                       # or a host registering with subnets of its own.
                       Compare.prefix_unchanged_since(self.keys.networks(), revision),
                       Compare.prefix_unchanged_since(self.keys.hosts(), hosts_read_at)],
                      [Op.put(key, network.to_json())])
            txn.add(reserved)
            if request_id:
                txn.add(Txn(*await self.requests.record(
                    Request(request_id, "network create", name, at=time.time(), network_id=network.id))))
            return Commit(txn, network)

        return await retrying(self.records.etcd, attempt, what=f"create network {name!r}", changing="the networks")

    async def made_by(self, done: Request, name: str) -> Network:
        """The network a create already carried out made, as it is now."""
        done.check_same("network create", name)
        found = await self.records.record(self.keys.network(name), Network)
        if found is None or found[1].id != done.network_id:
            raise FailedPrecondition(f"request {done.id!r} created network {name!r}, which has been removed since")
        return found[1]

    @surface_unavailable
    async def remove(self, name: str, request_id: str = "") -> None:
        """With `request_id`, a repeat of a removal already made changes nothing."""
        async def attempt(_: int) -> Commit[None] | Settled[None]:
            done = await self.requests.get(request_id)
            if done is not None:
                done.check_same("network rm", name)
                return Settled(None)
            kv, network = await self.records.network(name)
            if network.builtin:
                raise FailedPrecondition(f"{name} is a pre-defined network and cannot be removed")
            driver = drivers.driver_for(network)
            endpoints, read_at = await driver.endpoints(self.records, network)
            stopped = await self._stopped(endpoints)
            active = [e.container for e in endpoints if e.container not in stopped]
            if active:
                raise FailedPrecondition(f"network {name!r} has active endpoints: {', '.join(active)}")
            services, services_read_at = await self.records.records(self.keys.services(), ServiceSpec)
            users = ", ".join(spec.name for _, spec in services if name in spec.networks)
            if users:
                raise FailedPrecondition(f"network {name!r} is used by service {users}")
            txn = Txn([Compare.mod_revision(kv.key, "=", kv.mod_revision),
                       # A service created meanwhile guards on the network's revision; this on theirs.
                       Compare.prefix_unchanged_since(self.keys.services(), services_read_at)],
                      [Op.delete(kv.key)])
            # As Docker, stopped containers do not hold a network: they leave it
            # (their addresses go with the network's reservations below).
            for spec_kv, spec in stopped.values():
                left = dataclasses.replace(spec, attachments=[a for a in spec.attachments if a.network != name])
                txn.compares.append(Compare.mod_revision(spec_kv.key, "=", spec_kv.mod_revision))
                txn.ops += [Op.put(spec_kv.key, left.to_json())]
                txn.ops += [Op.delete(k) for k in driver.row_keys(self.keys, name, spec.name)]
            txn.add(driver.removal(self.keys, network, read_at))
            if request_id:
                txn.add(Txn(*await self.requests.record(
                    Request(request_id, "network rm", name, at=time.time(), network_id=network.id))))
            return Commit(txn, None)

        await retrying(self.records.etcd, attempt, what=f"remove network {name!r}")

    async def _stopped(self, endpoints: list[Endpoint]) -> dict[str, tuple[KV, ContainerSpec]]:
        """The endpoints' containers that are stopped (their last report says
        exited), with the spec each was read at."""
        stopped = {}
        for endpoint in endpoints:
            status = await self.records.record(self.keys.status(endpoint.container), ContainerStatus)
            spec = await self.records.record(self.keys.container(endpoint.container), ContainerSpec)
            if status is not None and status[1].state == "exited" and spec is not None:
                stopped[endpoint.container] = spec
        return stopped

    @surface_unavailable
    async def get(self, name: str) -> Network:
        return (await self.records.network(name))[1]

    @surface_unavailable
    async def list_all(self) -> list[Network]:
        records, _ = await self.records.records(self.keys.networks(), Network)
        return [network for _, network in records]

    @surface_unavailable
    async def endpoints(self, name: str) -> list[Endpoint]:
        _, network = await self.records.network(name)
        return (await drivers.driver_for(network).endpoints(self.records, network))[0]

    @surface_unavailable
    async def ensure_builtin(self) -> None:
        """Docker's pre-defined networks (the default bridge, whose subnet each host
        picks; host; none). Created once, by whichever controller comes first."""
        for name, driver in drivers.BUILTIN.items():
            network = Network(name=name, subnet="", gateway="", vni=0, driver=driver.name, id=secrets.token_hex(32),
                              created_at=time.time(), builtin=True, scope=driver.scope)
            key = self.keys.network(name)
            await self.records.etcd.txn([Compare.absent(key)], [Op.put(key, network.to_json())])
