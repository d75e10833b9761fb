"""Every vxmesh state change, each as one etcd transaction.

etcd is the only source of truth and several controllers may share it, so
nothing here trusts what it read: each change is a transaction guarded by
compares on what it read, and a failed compare means "someone else changed
it", answered by reading again. Errors the user should see are `UserError`s
(see proto/errors.py), including `Unavailable` when etcd is down.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from proto.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from controller.etcd import KV, Compare, Etcd, EtcdError, EtcdUnavailable, Op
from controller.ipam import next_free_vni
from proto import validate
from proto.addresses import (
    UNDERLAY_FAMILIES,
    check_gateway,
    default_gateway,
    mac_for_ip,
    next_free_ip,
    overlaps,
    parse_ip,
    parse_subnet,
)
from controller.keys import Keys
from controller.run_options import (
    BUILTIN_NETWORKS,
    RunOptions,
    check_options,
    network_choice,
    pick_host_port,
)
from proto.records import (
    Attachment,
    ContainerSpec,
    ContainerStatus,
    Endpoint,
    Host,
    Network,
    PortMapping,
    Record,
)

R = TypeVar("R", bound=Record)
P = ParamSpec("P")
T = TypeVar("T")

# Retries after a lost race. Address allocation gets more: many containers
# created at once on one network all compete for the same low addresses.
NETWORK_ATTEMPTS = 10
CONTAINER_ATTEMPTS = 20
UPDATE_ATTEMPTS = 10

DESIRED_STATES = ("running", "stopped")
# Drivers `network create` accepts: multi-host VXLAN, or a bridge local to each host.
CREATABLE_DRIVERS = ("overlay", "bridge")


class CorruptRecord(Exception):
    """A value in etcd is not the JSON record its key says it is."""


def _surface_unavailable(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn a lost etcd into the user-facing Unavailable the API layer reports."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except EtcdUnavailable as exc:
            raise Unavailable(str(exc)) from exc

    return wrapper


def _decode(kv: KV, cls: type[R]) -> R:
    try:
        return cls.from_json(kv.value)
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptRecord(f"etcd key {kv.key} does not hold a valid {cls.__name__}: {exc}") from exc


def _json(data: dict[str, object]) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


async def _backoff(attempt: int) -> None:
    # Jitter so racing controllers do not retry in lockstep.
    await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))


class Store:
    def __init__(self, etcd: Etcd, prefix: str = "/vxmesh/", *, controller_id: str | None = None) -> None:
        self.etcd = etcd
        self.keys = Keys(prefix)
        self.controller_id = controller_id or f"{socket.gethostname()}:{os.getpid()}"

    # ---- reading helpers --------------------------------------------------

    async def _records(self, prefix: str, cls: type[R]) -> tuple[list[tuple[KV, R]], int]:
        """Every record under `prefix` with its KV, and the revision of the read."""
        kvs, revision = await self.etcd.get_prefix(prefix)
        return [(kv, _decode(kv, cls)) for kv in kvs], revision

    async def _record(self, key: str, cls: type[R]) -> tuple[KV, R] | None:
        kv = await self.etcd.get(key)
        return None if kv is None else (kv, _decode(kv, cls))

    async def _network_record(self, name: str) -> tuple[KV, Network]:
        found = await self._record(self.keys.network(name), Network)
        if found is None:
            raise NotFound(f"network {name!r} not found")
        return found

    async def _container_record(self, name: str) -> tuple[KV, ContainerSpec]:
        found = await self._record(self.keys.container(name), ContainerSpec)
        if found is None:
            raise NotFound(f"container {name!r} not found")
        return found

    async def _host_record(self, name: str) -> tuple[KV, Host]:
        found = await self._record(self.keys.host(name), Host)
        if found is None:
            raise NotFound(f"host {name!r} not found")
        return found

    # ---- networks ---------------------------------------------------------

    @_surface_unavailable
    async def create_network(
        self, name: str, subnet: str, gateway: str = "", vni: int = 0, driver: str = "overlay"
    ) -> Network:
        validate.name("network", name)
        if driver not in CREATABLE_DRIVERS:
            raise InvalidArgument(
                f"unsupported network driver {driver!r}: use one of {', '.join(CREATABLE_DRIVERS)}")
        net = parse_subnet(subnet)
        gateway = check_gateway(net, gateway) if gateway else default_gateway(net)
        if vni and driver != "overlay":
            raise InvalidArgument(f"--vni is for overlay networks; network {name!r} uses driver {driver!r}")
        if vni:
            validate.vni(vni)
        key = self.keys.network(name)
        for attempt in range(NETWORK_ATTEMPTS):
            existing, revision = await self._records(self.keys.networks(), Network)
            vni_kvs, _ = await self.etcd.get_prefix(self.keys.vnis())
            networks = {n.name: n for _, n in existing}
            vni_owners = {int(self.keys.parse(kv.key)[1][0]): kv.value.decode() for kv in vni_kvs}
            if name in networks:
                raise AlreadyExists(f"network {name!r} already exists")
            clash = overlaps(net, {n.name: n.subnet for n in networks.values() if n.subnet})
            if clash is not None:
                raise FailedPrecondition(
                    f"subnet {net} overlaps network {clash!r} ({networks[clash].subnet})"
                )
            if vni in vni_owners:
                raise AlreadyExists(f"VNI {vni} is already used by network {vni_owners[vni]!r}")
            overlay = driver == "overlay"
            network = Network(
                name=name,
                subnet=str(net),
                gateway=gateway,
                vni=(vni or next_free_vni(set(vni_owners))) if overlay else 0,
                driver=driver,
                scope="global" if overlay else "local",
                id=secrets.token_hex(32),
                created_at=time.time(),
            )
            compares = [
                Compare.absent(key),
                # Another controller may be adding an overlapping subnet right now.
                Compare.prefix_unchanged_since(self.keys.networks(), revision),
            ]
            ops = [Op.put(key, network.to_json())]
            if overlay:
                vni_key = self.keys.vni(network.vni)
                compares.append(Compare.absent(vni_key))
                ops.append(Op.put(vni_key, name.encode()))
            result = await self.etcd.txn(compares, ops)
            if result.succeeded:
                return network
            await _backoff(attempt)  # the next read tells what changed
        raise Aborted(f"could not create network {name!r}: the networks kept changing concurrently; try again")

    @_surface_unavailable
    async def remove_network(self, name: str) -> None:
        for attempt in range(UPDATE_ATTEMPTS):
            kv, network = await self._network_record(name)
            if network.builtin:
                raise FailedPrecondition(f"{name} is a pre-defined network and cannot be removed")
            endpoints, read_at = await self._endpoints_of(network)
            if endpoints:
                users = ", ".join(e.container for e in endpoints)
                raise FailedPrecondition(f"network {name!r} has active endpoints: {users}")
            compares = [Compare.mod_revision(kv.key, "=", kv.mod_revision)]
            ops = [Op.delete(kv.key)]
            if network.local:
                # Nobody may attach while we look: attachments live in the specs.
                compares.append(Compare.prefix_unchanged_since(self.keys.containers(), read_at))
                ops.append(Op.delete_prefix(self.keys.local_ipam_network(name)))
            else:
                compares.append(Compare.prefix_empty(self.keys.endpoints(name)))
                ops += [Op.delete(self.keys.vni(network.vni)), Op.delete_prefix(self.keys.ipam_network(name))]
            result = await self.etcd.txn(compares, ops)
            if result.succeeded:
                return
            await _backoff(attempt)
        raise Aborted(f"could not remove network {name!r}: it kept changing concurrently; try again")

    @_surface_unavailable
    async def get_network(self, name: str) -> Network:
        return (await self._network_record(name))[1]

    @_surface_unavailable
    async def list_networks(self) -> list[Network]:
        records, _ = await self._records(self.keys.networks(), Network)
        return [network for _, network in records]

    @_surface_unavailable
    async def network_endpoints(self, name: str) -> list[Endpoint]:
        _, network = await self._network_record(name)
        return (await self._endpoints_of(network))[0]

    async def _endpoints_of(self, network: Network) -> tuple[list[Endpoint], int]:
        """Overlay endpoints are table rows in etcd; a local network's come from the
        specs (no other host needs them, so they are not streamed anywhere)."""
        if not network.local:
            records, revision = await self._records(self.keys.endpoints(network.name), Endpoint)
            return [endpoint for _, endpoint in records], revision
        specs, revision = await self._records(self.keys.containers(), ContainerSpec)
        return [
            Endpoint(network=network.name, container=spec.name, host=spec.host, vtep="", ip=a.ip, mac=a.mac)
            for _, spec in specs for a in spec.attachments if a.network == network.name
        ], revision

    @_surface_unavailable
    async def ensure_builtin_networks(self) -> None:
        """Docker's pre-defined networks: the default bridge (each host picks its
        subnet), host and none. Created once, by whichever controller comes first."""
        for name, driver in BUILTIN_NETWORKS.items():
            network = Network(name=name, subnet="", gateway="", vni=0, driver=driver,
                              id=secrets.token_hex(32), created_at=time.time(), builtin=True, scope="local")
            key = self.keys.network(name)
            await self.etcd.txn([Compare.absent(key)], [Op.put(key, network.to_json())])

    # ---- hosts ------------------------------------------------------------

    @_surface_unavailable
    async def register_host(self, host: Host) -> None:
        """Record the host; `state` and `containers` are computed on read, not stored.

        A host that comes back with a new VTEP address gets all its endpoints
        re-pointed in the same transaction, so no host's table ever mixes the two.
        """
        validate.host_name(host.name)
        parse_ip(host.vtep, "VTEP address", UNDERLAY_FAMILIES)
        key = self.keys.host(host.name)
        record = dataclasses.replace(host, state="", containers=0, registered_at=time.time())
        for attempt in range(UPDATE_ATTEMPTS):
            found = await self._record(key, Host)
            unchanged = Compare.absent(key) if found is None else Compare.mod_revision(key, "=", found[0].mod_revision)
            compares = [unchanged]
            ops = [Op.put(key, record.to_json())]
            if found is not None and found[1].vtep != host.vtep:
                endpoints, revision = await self._records(self.keys.endpoints_all(), Endpoint)
                compares.append(Compare.prefix_unchanged_since(self.keys.endpoints_all(), revision))
                ops += [
                    Op.put(kv.key, dataclasses.replace(e, vtep=host.vtep).to_json())
                    for kv, e in endpoints
                    if e.host == host.name
                ]
            if (await self.etcd.txn(compares, ops)).succeeded:
                return
            await _backoff(attempt)
        raise Aborted(
            f"could not register host {host.name!r}: its record kept changing concurrently; try again"
        )

    async def _host_view(self, hosts: list[Host]) -> list[Host]:
        alive_kvs, _ = await self.etcd.get_prefix(self.keys.alive_all())
        alive = {self.keys.parse(kv.key)[1][0] for kv in alive_kvs}
        specs, _ = await self._records(self.keys.containers(), ContainerSpec)
        counts = Counter(spec.host for _, spec in specs)
        return [
            dataclasses.replace(h, state="up" if h.name in alive else "down", containers=counts[h.name])
            for h in hosts
        ]

    @_surface_unavailable
    async def get_host(self, name: str) -> Host:
        return (await self._host_view([(await self._host_record(name))[1]]))[0]

    @_surface_unavailable
    async def list_hosts(self) -> list[Host]:
        records, _ = await self._records(self.keys.hosts(), Host)
        return await self._host_view([host for _, host in records])

    # ---- containers -------------------------------------------------------

    @_surface_unavailable
    async def create_container(
        self,
        name: str,
        host: str,
        command: list[str],
        env: dict[str, str],
        hostname: str,
        networks: list[str],
        options: RunOptions = RunOptions(),
    ) -> ContainerSpec:
        """Write the container's spec, one address per network, its endpoints, its
        published host ports and an initial "created" status, all at once. An empty
        hostname means the name; no networks means Docker's default "bridge"."""
        validate.name("container", name)
        if not host:
            raise InvalidArgument(f"no host given for container {name!r}")
        choice = network_choice(networks)
        check_options(options, choice.mode)
        key, status_key = self.keys.container(name), self.keys.status(name)
        for attempt in range(CONTAINER_ATTEMPTS):
            if await self.etcd.get(key) is not None:
                raise AlreadyExists(f"container {name!r} already exists")
            if await self.etcd.get(status_key) is not None:
                raise FailedPrecondition(
                    f"container {name!r} was removed but its host has not yet confirmed it is gone; "
                    "try again shortly"
                )
            host_kv, host_record = await self._host_record(host)
            spec = ContainerSpec(
                id=secrets.token_hex(32),
                name=name,
                host=host,
                command=list(command),
                env=dict(env),
                hostname=hostname or name,
                desired="running",
                created_at=time.time(),
                network_mode=choice.mode,
                rootfs=options.rootfs,
                mounts=list(options.mounts),
                memory_bytes=options.memory_bytes,
                cpus=options.cpus,
                pids_limit=options.pids_limit,
                stop_timeout=options.stop_timeout,
            )
            compares = [
                Compare.absent(key),
                Compare.absent(status_key),
                # Endpoints copy the host's VTEP: a re-registration must not slip in between.
                Compare.mod_revision(host_kv.key, "=", host_kv.mod_revision),
            ]
            ops = []
            if choice.mode.startswith("container:"):
                await self._check_network_owner(spec)
            for network in choice.networks:
                more_compares, more_ops = await self._attach(spec, network, host_record, randomize=attempt > 0)
                compares += more_compares
                ops += more_ops
            more_compares, more_ops = await self._publish(spec, options.ports, randomize=attempt > 0)
            compares += more_compares
            ops += more_ops
            status = ContainerStatus(name=name, id=spec.id, state="created")
            ops += [Op.put(key, spec.to_json()), Op.put(status_key, status.to_json())]
            if (await self.etcd.txn(compares, ops)).succeeded:
                return spec
            await _backoff(attempt)
        raise Aborted(
            f"could not allocate addresses for container {name!r} in {CONTAINER_ATTEMPTS} attempts: "
            "other requests kept taking them first; try again"
        )

    async def _check_network_owner(self, spec: ContainerSpec) -> None:
        owner = spec.network_owner
        if owner == spec.name:
            raise InvalidArgument(f"container {spec.name!r} cannot join its own network namespace")
        found = await self._record(self.keys.container(owner), ContainerSpec)
        if found is None:
            raise NotFound(f"--network container:{owner}: no such container {owner!r}")
        if found[1].host != spec.host:
            raise FailedPrecondition(
                f"--network container:{owner}: container {owner!r} runs on host {found[1].host!r}, "
                f"not {spec.host!r}; a network namespace cannot be shared across hosts")

    async def _attach(
        self, spec: ContainerSpec, network_name: str, host: Host, randomize: bool
    ) -> tuple[list[Compare], list[Op]]:
        """Add an attachment to `spec` and return the guards and writes it needs:
        an address (cluster-wide for overlay, per host for bridge networks) and,
        for overlay, the endpoint every host's table gets."""
        net_kv, network = await self._network_record(network_name)
        if network.driver not in CREATABLE_DRIVERS:
            raise InvalidArgument(
                f"network {network_name!r} (driver {network.driver}) is a mode, not a network to attach: "
                f"use --network {network_name} alone")
        subnet, gateway = network.subnet, network.gateway
        if network.local and not subnet:  # the default bridge: the host's own subnet
            if not host.bridge_subnet:
                raise FailedPrecondition(f"host {host.name!r} has no default bridge subnet configured")
            subnet = host.bridge_subnet
            gateway = default_gateway(parse_subnet(subnet, "bridge subnet", bounded=False))
        if network.local:
            prefix = self.keys.local_ipam_host(network_name, host.name)
        else:
            prefix = self.keys.ipam_network(network_name)
        ip = await self._pick_address(prefix, network_name, subnet, gateway, randomize)
        attachment = Attachment(network=network_name, ip=ip, mac=mac_for_ip(ip))
        spec.attachments.append(attachment)
        ipam_key = prefix + ip
        owner = _json({"container": spec.name, "host": host.name, "id": spec.id})
        # The exact revision, not mere existence: a network removed and
        # re-created meanwhile may have another subnet.
        compares = [Compare.mod_revision(net_kv.key, "=", net_kv.mod_revision), Compare.absent(ipam_key)]
        ops = [Op.put(ipam_key, owner)]
        if not network.local:
            endpoint = Endpoint(network=network_name, container=spec.name, host=host.name, vtep=host.vtep,
                                ip=ip, mac=attachment.mac)
            ops.append(Op.put(self.keys.endpoint(network_name, spec.name), endpoint.to_json()))
        return compares, ops

    async def _publish(
        self, spec: ContainerSpec, ports: tuple[PortMapping, ...], randomize: bool
    ) -> tuple[list[Compare], list[Op]]:
        """Reserve the host ports of `ports` on the spec's host (choosing free ones
        for host port 0) and record the final mappings in the spec."""
        if not ports:
            return [], []
        kvs, _ = await self.etcd.get_prefix(self.keys.ports(spec.host))
        taken: dict[tuple[str, int], str] = {}
        for kv in kvs:
            port, _, protocol = self.keys.parse(kv.key)[1][1].partition("-")
            taken[(protocol, int(port))] = json.loads(kv.value).get("container", "?")
        compares, ops = [], []
        owner = _json({"container": spec.name, "host": spec.host, "id": spec.id})
        chosen: set[tuple[str, int]] = set()
        for mapping in ports:
            host_port = mapping.host_port
            if host_port and (mapping.protocol, host_port) in taken:
                raise FailedPrecondition(
                    f"host port {host_port}/{mapping.protocol} on host {spec.host!r} is already published "
                    f"by container {taken[(mapping.protocol, host_port)]!r}")
            if not host_port:
                start = random.choice(range(32768, 61000)) if randomize else None
                host_port = pick_host_port(mapping.protocol, set(taken) | chosen, start)
            chosen.add((mapping.protocol, host_port))
            spec.ports.append(PortMapping(mapping.protocol, host_port, mapping.container_port))
            port_key = self.keys.port(spec.host, mapping.protocol, host_port)
            compares.append(Compare.absent(port_key))
            ops.append(Op.put(port_key, owner))
        return compares, ops

    async def _pick_address(self, prefix: str, network: str, subnet: str, gateway: str, randomize: bool) -> str:
        """The lowest free address; after a lost race a random free one, so that
        controllers that collided once do not keep colliding on the same address."""
        allocations, _ = await self.etcd.get_prefix(prefix, keys_only=True)  # the keys are the addresses
        taken = {kv.key.rsplit("/", 1)[1] for kv in allocations}
        net = parse_subnet(subnet, bounded=False)
        hint = None
        if randomize:
            hint = str(net.network_address + random.randrange(1, net.num_addresses - 1))
        return next_free_ip(net, gateway, taken, hint, network=network)

    # ---- connect / disconnect -------------------------------------------

    @_surface_unavailable
    async def connect(self, container: str, network: str) -> ContainerSpec:
        """Attach a (running or stopped) container to one more network."""
        validate.name("network", network)
        for attempt in range(CONTAINER_ATTEMPTS):
            kv, spec = await self._container_record(container)
            if spec.network_mode:
                raise FailedPrecondition(
                    f"container {container!r} uses --network {spec.network_mode}: it has no interfaces "
                    "of its own to connect")
            if network in spec.networks:
                raise AlreadyExists(f"container {container!r} is already connected to network {network!r}")
            host_kv, host = await self._host_record(spec.host)
            updated = dataclasses.replace(spec, attachments=list(spec.attachments))
            compares, ops = await self._attach(updated, network, host, randomize=attempt > 0)
            compares += [Compare.mod_revision(kv.key, "=", kv.mod_revision),
                         Compare.mod_revision(host_kv.key, "=", host_kv.mod_revision)]
            ops.append(Op.put(kv.key, updated.to_json()))
            if (await self.etcd.txn(compares, ops)).succeeded:
                return updated
            await _backoff(attempt)
        raise Aborted(f"could not connect {container!r} to {network!r}: state kept changing; try again")

    @_surface_unavailable
    async def disconnect(self, container: str, network: str) -> ContainerSpec:
        """Detach a container from a network; its address is free again at once."""
        for attempt in range(UPDATE_ATTEMPTS):
            kv, spec = await self._container_record(container)
            attachment = next((a for a in spec.attachments if a.network == network), None)
            if attachment is None:
                raise NotFound(f"container {container!r} is not connected to network {network!r}")
            _, net = await self._network_record(network)
            updated = dataclasses.replace(spec, attachments=[a for a in spec.attachments if a is not attachment])
            ops = [Op.put(kv.key, updated.to_json())]
            if net.local:
                ops.append(Op.delete(self.keys.local_ipam(network, spec.host, attachment.ip)))
            else:
                ops += [Op.delete(self.keys.ipam(network, attachment.ip)),
                        Op.delete(self.keys.endpoint(network, container))]
            result = await self.etcd.txn([Compare.mod_revision(kv.key, "=", kv.mod_revision)], ops)
            if result.succeeded:
                return updated
            await _backoff(attempt)
        raise Aborted(f"could not disconnect {container!r} from {network!r}: it kept changing; try again")

    @_surface_unavailable
    async def get_container(self, name: str) -> tuple[ContainerSpec, ContainerStatus | None]:
        _, spec = await self._container_record(name)
        found = await self._record(self.keys.status(name), ContainerStatus)
        return spec, None if found is None else found[1]

    @_surface_unavailable
    async def list_containers(self) -> list[tuple[ContainerSpec, ContainerStatus | None]]:
        specs, _ = await self._records(self.keys.containers(), ContainerSpec)
        statuses, _ = await self._records(self.keys.statuses(), ContainerStatus)
        by_name = {status.name: status for _, status in statuses}
        return [(spec, by_name.get(spec.name)) for _, spec in specs]

    @_surface_unavailable
    async def set_desired(self, name: str, desired: str, bump_generation: bool = False,
                          stop_timeout: int | None = None) -> ContainerSpec:
        """Change what the agent should do; a generation bump makes it restart the container."""
        if desired not in DESIRED_STATES:
            raise InvalidArgument(f"invalid desired state {desired!r}: use one of {', '.join(DESIRED_STATES)}")
        for attempt in range(UPDATE_ATTEMPTS):
            kv, spec = await self._container_record(name)
            updated = dataclasses.replace(
                spec, desired=desired, generation=spec.generation + (1 if bump_generation else 0),
                stop_timeout=spec.stop_timeout if stop_timeout is None else stop_timeout,
            )
            result = await self.etcd.txn(
                [Compare.mod_revision(kv.key, "=", kv.mod_revision)], [Op.put(kv.key, updated.to_json())]
            )
            if result.succeeded:
                return updated
            await _backoff(attempt)
        raise Aborted(f"could not update container {name!r}: it kept changing concurrently; try again")

    @_surface_unavailable
    async def put_status(self, host: str, status: ContainerStatus) -> bool:
        """Store an agent's report; False (nothing written) when the container is
        unknown, runs elsewhere, or is a different container under a reused name."""
        for attempt in range(UPDATE_ATTEMPTS):
            found = await self._record(self.keys.container(status.name), ContainerSpec)
            if found is None:
                return False
            kv, spec = found
            if spec.host != host or (status.id and status.id != spec.id):
                return False
            result = await self.etcd.txn(
                [Compare.mod_revision(kv.key, "=", kv.mod_revision)],
                [Op.put(self.keys.status(status.name), status.to_json())],
            )
            if result.succeeded:
                return True
            await _backoff(attempt)
        raise Aborted(f"could not record the status of container {status.name!r}: it kept changing; try again")

    @_surface_unavailable
    async def delete_container(self, name: str) -> ContainerSpec:
        """Drop the spec and its endpoints (every host's table loses them at once).

        Addresses and status stay until `release_container`: the old owner may
        still hold the address until its agent confirms the container is gone.
        """
        for attempt in range(UPDATE_ATTEMPTS):
            kv, spec = await self._container_record(name)
            ops = [Op.delete(kv.key)]
            ops += [Op.delete(self.keys.endpoint(network, name)) for network in spec.networks]
            result = await self.etcd.txn([Compare.mod_revision(kv.key, "=", kv.mod_revision)], ops)
            if result.succeeded:
                return spec
            await _backoff(attempt)
        raise Aborted(f"could not delete container {name!r}: it kept changing concurrently; try again")

    async def _allocations(self) -> list[tuple[str, dict[str, str]]]:
        """Every address and host port allocation as (key, {"container", "host", "id"})."""
        found = []
        for prefix in (self.keys.ipam_all(), self.keys.local_ipam_all(), self.keys.ports_all()):
            kvs, _ = await self.etcd.get_prefix(prefix)
            found += [(kv.key, json.loads(kv.value)) for kv in kvs]
        return found

    @_surface_unavailable
    async def release_container(self, name: str, host: str | None = None) -> bool:
        """Free a deleted container's addresses and drop its status, once its
        host reported it gone. Returns False, releasing nothing, while the
        container still exists or when its addresses belong to another `host`
        than the one reporting. Releasing twice is harmless.
        """
        key = self.keys.container(name)
        for attempt in range(UPDATE_ATTEMPTS):
            held = [(k, owner) for k, owner in await self._allocations() if owner.get("container") == name]
            if host is not None and any(owner.get("host") != host for _, owner in held):
                return False
            ops = [Op.delete(self.keys.status(name))] + [Op.delete(k) for k, _ in held]
            if (await self.etcd.txn([Compare.absent(key)], ops)).succeeded:
                return True
            if await self.etcd.get(key) is not None:
                return False
            await _backoff(attempt)
        raise Aborted(f"could not release container {name!r}: it kept changing concurrently; try again")

    @_surface_unavailable
    async def pending_releases(self, host: str | None = None) -> list[str]:
        """Deleted containers still holding a status or addresses, e.g. because a
        controller restart missed the agent's report. With `host`: those whose
        addresses were on that host, plus leftovers holding no address at all
        (their network was removed), which any host may release."""
        # Only the names matter here: with thousands of containers the values were most of the cost.
        specs, _ = await self.etcd.get_prefix(self.keys.containers(), keys_only=True)
        statuses, _ = await self.etcd.get_prefix(self.keys.statuses(), keys_only=True)
        existing = {self.keys.parse(kv.key)[1][0] for kv in specs}
        owners: dict[str, set[str]] = {self.keys.parse(kv.key)[1][0]: set() for kv in statuses}
        for _, owner in await self._allocations():
            owners.setdefault(owner.get("container", ""), set()).add(owner.get("host", ""))
        return sorted(
            name
            for name, hosts in owners.items()
            if name and name not in existing and (host is None or not hosts or hosts == {host})
        )

    # ---- host liveness ----------------------------------------------------

    @_surface_unavailable
    async def mark_alive(self, host: str, ttl: int) -> int:
        """Bind alive/<host> to a fresh lease: the key vanishes by itself if this
        controller stops renewing it. Returns the lease id."""
        validate.host_name(host)
        lease = await self.etcd.grant(ttl)
        # A HostAlive record (proto/records.py); the rest says who holds the lease since when.
        value = _json({"host": host, "controller": self.controller_id, "since": time.time()})
        try:
            await self.etcd.put(self.keys.alive(host), value, lease=lease)
        except BaseException:
            # Best effort: a lease we cannot revoke expires after `ttl` anyway.
            with contextlib.suppress(EtcdError):
                await self.etcd.revoke(lease)
            raise
        return lease

    @_surface_unavailable
    async def keep_alive(self, lease_id: int) -> bool:
        """Renew; False once the lease is gone (the host was declared down)."""
        return await self.etcd.keepalive(lease_id) > 0

    @_surface_unavailable
    async def mark_down(self, lease_id: int) -> None:
        await self.etcd.revoke(lease_id)
