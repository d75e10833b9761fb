"""Networks: create, list, inspect and remove, each as one etcd transaction.

What differs between drivers (what a network reserves, how its endpoints
are found, what its removal frees) is asked of its driver
(controller/drivers/); what every network shares is here: unique names,
subnets that do not overlap each other nor what the hosts use themselves
(their underlay, gwbridge and default bridge subnets, proto/records.py
Host.own_subnets) nor address space that is not unicast
(proto/addresses.py), and no removal while anything is attached. Every
refusal comes before anything is written.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Mapping

from controller import drivers
from controller.drivers.base import NetworkRequest
from controller.etcd import Compare, Op, Txn
from controller.store.records import Records
from controller.store.transaction import Commit, retrying, surface_unavailable
from proto import validate
from proto.addresses import check_gateway, check_unicast, default_gateway, parse_subnet, subnet_clash
from proto.errors import AlreadyExists, FailedPrecondition
from proto.records import Endpoint, Host, Network, ServiceSpec


class Networks:
    def __init__(self, records: Records) -> None:
        self.records = records
        self.keys = records.keys

    @surface_unavailable
    async def create(self, name: str, subnet: str, gateway: str = "", vni: int = 0,
                     driver: str = drivers.DEFAULT_DRIVER, options: Mapping[str, str] | None = None) -> Network:
        validate.name("network", name)
        request = NetworkRequest(name, subnet, gateway, vni, driver, dict(options or {}))
        chosen, flags = drivers.for_create(request)
        net = check_unicast(parse_subnet(subnet))
        gateway = check_gateway(net, gateway) if gateway else default_gateway(net)
        await chosen.check_create(request, flags)
        key = self.keys.network(name)

        async def attempt(_: int) -> Commit[Network]:
            existing, revision = await self.records.records(self.keys.networks(), Network)
            networks = {n.name: n for _, n in existing}
            if name in networks:
                raise AlreadyExists(f"network {name!r} already exists")
            hosts, hosts_read_at = await self.records.records(self.keys.hosts(), Host)
            taken = {f"network {n.name!r}": n.subnet for n in networks.values() if n.subnet}
            for _, host in hosts:
                taken.update(host.own_subnets())
            clash = subnet_clash(net, taken)
            if clash is not None:
                raise FailedPrecondition(clash)
            network, reserved = await chosen.reserve(self.records, Network(
                name=name, subnet=str(net), gateway=gateway, vni=vni, driver=chosen.name, scope=chosen.scope,
                id=secrets.token_hex(32), created_at=time.time()))
            txn = Txn([Compare.absent(key),
                       # Another controller may be adding an overlapping subnet right now,
                       # or a host registering with subnets of its own.
                       Compare.prefix_unchanged_since(self.keys.networks(), revision),
                       Compare.prefix_unchanged_since(self.keys.hosts(), hosts_read_at)],
                      [Op.put(key, network.to_json())])
            txn.add(reserved)
            return Commit(txn, network)

        return await retrying(self.records.etcd, attempt, what=f"create network {name!r}", changing="the networks")

    @surface_unavailable
    async def remove(self, name: str) -> None:
        async def attempt(_: int) -> Commit[None]:
            kv, network = await self.records.network(name)
            if network.builtin:
                raise FailedPrecondition(f"{name} is a pre-defined network and cannot be removed")
            driver = drivers.driver_for(network)
            endpoints, read_at = await driver.endpoints(self.records, network)
            if endpoints:
                users = ", ".join(e.container for e in endpoints)
                raise FailedPrecondition(f"network {name!r} has active endpoints: {users}")
            services, services_read_at = await self.records.records(self.keys.services(), ServiceSpec)
            users = ", ".join(spec.name for _, spec in services if name in spec.networks)
            if users:
                raise FailedPrecondition(f"network {name!r} is used by service {users}")
            txn = Txn([Compare.mod_revision(kv.key, "=", kv.mod_revision),
                       # A service created meanwhile guards on the network's revision; this on theirs.
                       Compare.prefix_unchanged_since(self.keys.services(), services_read_at)],
                      [Op.delete(kv.key)])
            txn.add(driver.removal(self.keys, network, read_at))
            return Commit(txn, None)

        await retrying(self.records.etcd, attempt, what=f"remove network {name!r}")

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
