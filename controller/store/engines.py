"""Endpoints other container engines own: Docker's through the network plug-in,
podman's (any CNI runtime's) through vxmesh-cni, both asked by the agent of the
engine's host.

Each is a ContainerSpec with `engine` set and exactly one attachment, so it
takes its address from the same IPAM, writes the same table rows, shows in
`ps` and `network inspect` and is removed (rows at once, address once its
host confirms) like any container. Nothing runs for it: the agent wires the
engine's network namespace (`sandbox`) once the engine joins it.
"""
from __future__ import annotations

import dataclasses
import re
import secrets
import time

from controller import drivers
from controller.etcd import Compare, Op, Txn
from controller.run_options import check_aliases
from controller.store import allocations
from controller.store.records import Records
from controller.store.removal import spec_deletion
from controller.store.transaction import ALLOCATION_ATTEMPTS, Commit, retrying, surface_unavailable
from proto import validate
from proto.errors import FailedPrecondition, InvalidArgument, NotFound
from proto.records import ContainerSpec, ContainerStatus, Endpoint, Network, PortMapping

ENGINES = ("docker", "cni")
# Docker's ids are 64 hex digits; CNI only says "unique, not empty": what a
# runtime may plausibly send, and nothing a log line or path could trip on.
_ENGINE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
NAME_ID_CHARS = 12


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InvalidArgument(f"unknown container engine {engine!r}: use one of {', '.join(ENGINES)}")
    return engine


def check_engine_id(engine_id: str) -> str:
    if engine_id and not _ENGINE_ID.fullmatch(engine_id):
        raise InvalidArgument(f"invalid engine container id {engine_id!r}: letters, digits, '_', '.' "
                              "and '-', a letter or digit first, at most 128 characters")
    return engine_id


def check_mac(mac: str) -> str:
    """A unicast, non-zero MAC in lowercase colon form, or "" (derived from the address)."""
    if not mac:
        return ""
    mac = mac.lower()
    if not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
        raise InvalidArgument(f"invalid MAC address {mac!r}: it must be a unicast address like 02:42:0a:00:00:02")
    return mac


def check_sandbox(sandbox: str) -> str:
    if sandbox and (not sandbox.startswith("/") or "\0" in sandbox or len(sandbox) > 4096):
        raise InvalidArgument(f"invalid network namespace path {sandbox!r}: it must be an absolute path")
    return sandbox


def _check_ports(ports: tuple[PortMapping, ...]) -> None:
    for mapping in ports:
        validate.protocol(mapping.protocol)
        validate.port(mapping.container_port, "container port")
        validate.port(mapping.host_port, "host port", zero_ok=True)


class EngineEndpoints:
    def __init__(self, records: Records) -> None:
        self.records = records
        self.keys = records.keys
        self.etcd = records.etcd

    @surface_unavailable
    async def attach(self, host: str, engine: str, network: str, ip: str = "", mac: str = "",
                     engine_id: str = "", sandbox: str = "", ports: tuple[PortMapping, ...] = (),
                     aliases: tuple[str, ...] = ()) -> ContainerSpec:
        """An address on `network` for an engine's container on `host`: the given
        one (refused if taken) or the next free one, all checked before anything
        is written."""
        check_engine(engine)
        check_engine_id(engine_id)
        mac = check_mac(mac)
        check_sandbox(sandbox)
        validate.name("network", network)
        _check_ports(ports)
        check_aliases(aliases)
        name = f"{engine}-{secrets.token_hex(NAME_ID_CHARS // 2)}"
        key, status_key = self.keys.container(name), self.keys.status(name)

        async def attempt(lost: int) -> Commit[ContainerSpec]:
            host_kv, host_record = await self.records.host(host)
            spec = ContainerSpec(id=secrets.token_hex(32), name=name, host=host, hostname=name,
                                 desired="running", created_at=time.time(), engine=engine,
                                 engine_id=engine_id, sandbox=sandbox)
            txn = Txn([Compare.absent(key), Compare.absent(status_key),
                       Compare.mod_revision(host_kv.key, "=", host_kv.mod_revision)])
            txn.add(await allocations.attach(self.records, spec, network, host_record,
                                             randomize=lost > 0, aliases=tuple(aliases), ip=ip, mac=mac))
            txn.add(await allocations.publish(self.records, spec, tuple(ports), randomize=lost > 0))
            status = ContainerStatus(name=name, id=spec.id, state="created", host=host)
            txn.ops += [Op.put(key, spec.to_json()), Op.put(status_key, status.to_json())]
            return Commit(txn, spec)

        return await retrying(self.etcd, attempt, what=f"attach a {engine} endpoint to {network!r}",
                              changing="the state", attempts=ALLOCATION_ATTEMPTS)

    @surface_unavailable
    async def join(self, host: str, name: str, engine_id: str, sandbox: str, interface: str = "",
                   engine_endpoint: str = "", ports: tuple[PortMapping, ...] = (),
                   engine_name: str = "", engine_aliases: tuple[str, ...] = ()) -> ContainerSpec:
        """Record the engine's namespace (and its container id) for the agent to wire;
        an empty `sandbox` is a leave: the interface goes, the address stays. The
        engine's name for the container (`engine_name`) and its aliases on the
        network (`engine_aliases`) become aliases of the endpoint, written into
        its table row for every host's embedded DNS."""
        check_engine_id(engine_id)
        check_engine_id(engine_endpoint)
        check_sandbox(sandbox)
        if interface:
            validate.ifname(interface)
        if engine_name:
            validate.name("container", engine_name)
        check_aliases(engine_aliases)
        _check_ports(ports)

        async def attempt(lost: int) -> Commit[ContainerSpec]:
            kv, spec = await self.owned(host, name)
            updated = dataclasses.replace(spec, sandbox=sandbox, engine_id=engine_id or spec.engine_id,
                                          interface=interface if sandbox else "",
                                          engine_endpoint=engine_endpoint or spec.engine_endpoint,
                                          ports=list(spec.ports), attachments=list(spec.attachments))
            txn = Txn([Compare.mod_revision(kv.key, "=", kv.mod_revision)])
            if ports and not spec.ports:
                txn.add(await allocations.publish(self.records, updated, tuple(ports), randomize=lost > 0))
            if updated.attachments:
                known = updated.attachments[0].aliases
                added = [n for n in dict.fromkeys((engine_name, *engine_aliases)) if n and n not in known]
                if added:
                    txn.add(await self._named(updated, added))
            txn.ops.append(Op.put(kv.key, updated.to_json()))
            return Commit(txn, updated)

        return await retrying(self.etcd, attempt, what=f"join endpoint {name!r}")

    async def _named(self, spec: ContainerSpec, added: list[str]) -> Txn:
        """`added` names appended to the aliases of `spec`'s attachment, and its table
        rows written again with them (guarded on the network and host they copy)."""
        attachment = dataclasses.replace(spec.attachments[0],
                                         aliases=[*spec.attachments[0].aliases, *added])
        spec.attachments[0] = attachment
        net_kv, network = await self.records.network(attachment.network)
        host_kv, host = await self.records.host(spec.host)
        txn = Txn([Compare.mod_revision(net_kv.key, "=", net_kv.mod_revision),
                   Compare.mod_revision(host_kv.key, "=", host_kv.mod_revision)])
        for key, record in drivers.driver_for(network).rows(self.keys, network, spec, host, attachment):
            found = await self.records.record(key, Endpoint) if isinstance(record, Endpoint) else None
            if found is not None:
                # The row as it is otherwise (whether its container runs, put_status's), guarded.
                txn.compares.append(Compare.mod_revision(found[0].key, "=", found[0].mod_revision))
                record = dataclasses.replace(record, stopped=found[1].stopped)
            txn.ops.append(Op.put(key, record.to_json()))
        return txn

    @surface_unavailable
    async def reclaim(self, host: str, name: str) -> ContainerSpec:
        """Remove an endpoint its engine forgot (no process is left in its namespace,
        agent/engines/reclaim.py) in one transaction: the spec and its table rows,
        its address and host ports, and its status. Unlike a removal its engine
        asked for, nothing can still be using the address, so there is no reason
        to hold it until the host confirms the teardown: it is free the moment
        the endpoint leaves the network."""
        async def attempt(_: int) -> Commit[ContainerSpec]:
            kv, spec = await self.owned(host, name)
            ops = await spec_deletion(self.records, kv, spec)
            ops += [Op.delete(key) for key, owner in await allocations.held(self.records)
                    if owner.get("container") == name]
            ops.append(Op.delete(self.keys.status(name)))
            return Commit(Txn([Compare.mod_revision(kv.key, "=", kv.mod_revision)], ops), spec)

        return await retrying(self.etcd, attempt, what=f"reclaim endpoint {name!r}")

    async def owned(self, host: str, name: str):
        """The engine endpoint `name` of `host`; anything else is refused by name."""
        kv, spec = await self.records.container(name)
        if not spec.engine:
            raise FailedPrecondition(f"container {name!r} is vxmesh's own, not an engine's endpoint")
        if spec.host != host:
            raise FailedPrecondition(f"endpoint {name!r} belongs to host {spec.host!r}, not {host!r}")
        return kv, spec

    @surface_unavailable
    async def list_on(self, host: str) -> list[ContainerSpec]:
        specs, _ = await self.records.records(self.keys.containers(), ContainerSpec)
        return [spec for _, spec in specs if spec.engine and spec.host == host]

    @surface_unavailable
    async def find_network(self, name: str, subnet: str) -> Network:
        """The network an engine names, or (no name) the one whose subnet it gave."""
        if name:
            found = await self.records.record(self.keys.network(validate.name("network", name)), Network)
            if found is None:
                raise NotFound(f"network {name!r} not found")
            return found[1]
        if not subnet:
            raise InvalidArgument("name a vxmesh network, or give its subnet")
        networks, _ = await self.records.records(self.keys.networks(), Network)
        for _, network in networks:
            if network.subnet == subnet:
                return network
        raise NotFound(f"no vxmesh network has subnet {subnet}")
