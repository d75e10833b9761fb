"""What a container holds exclusively: an address per network, its published host ports.

Each is a key created-if-absent in the container's own transaction, so two
controllers never hand out one address or port twice. Where an address
comes from and what else an attachment writes are its network driver's
(controller/drivers/): the overlay reserves cluster-wide and writes the
endpoint row other hosts see, a bridge reserves per host and writes nothing.
"""
from __future__ import annotations

import dataclasses
import json
import random

from controller import drivers
from controller.etcd import Compare, Op, Txn
from controller.store.records import Records, owner_json
from proto.addresses import check_static_ip, mac_for_ip, next_free_ip, parse_subnet
from proto.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from proto.records import Attachment, ContainerSpec, Endpoint, Host, Network, PortMapping, ServiceSpec

# Where a free host port is chosen for `-p CONTAINER_PORT` (Linux's default
# ephemeral range, as Docker uses).
EPHEMERAL_PORTS = range(32768, 61000)


async def attach(records: Records, spec: ContainerSpec, network_name: str, host: Host, randomize: bool,
                 aliases: tuple[str, ...] = (), ip: str = "", mac: str = "", stopped: bool = False) -> Txn:
    """Add an attachment to `spec` and return the guards and writes it needs: its
    address (`ip`, as --ip or an engine asks, or the next free one of the
    network's --ip-range or subnet) and the records its driver writes for it.
    `mac` pins the MAC (an engine's request); otherwise it is derived from the address.
    `stopped`: the container is not running now, so its endpoint row says so
    (its names do not resolve until it starts, see put_status)."""
    net_kv, network = await records.network(network_name)
    driver = drivers.driver_for(network)
    driver.check_attachable(network)
    directory = driver.reservations(records.keys, network_name, host.name)
    subnet, gateway = driver.subnet_for(network, host)
    if ip:
        if network.builtin:
            raise InvalidArgument(f"--ip: a chosen address needs a user network, not {network_name!r}")
        ip = check_static_ip(ip, parse_subnet(subnet, bounded=False), gateway, network_name)
        holder = await records.etcd.get(directory + ip)
        if holder is not None:
            raise FailedPrecondition(f"address {ip} is already in use on network {network_name!r} by container "
                                     f"{json.loads(holder.value).get('container', '?')!r}")
    else:
        ip = await pick_address(records, directory, network_name, network.ip_range or subnet, gateway, randomize)
    attachment = Attachment(network=network_name, ip=ip, mac=mac or mac_for_ip(ip), aliases=list(aliases))
    spec.attachments.append(attachment)
    # The exact revision, not mere existence: a network removed and
    # re-created meanwhile may have another subnet.
    txn = Txn([Compare.mod_revision(net_kv.key, "=", net_kv.mod_revision), Compare.absent(directory + ip)],
              [Op.put(directory + ip, owner_json(spec))])
    rows = driver.rows(records.keys, network, spec, host, attachment)
    if stopped:
        rows = [(key, dataclasses.replace(record, stopped=True) if isinstance(record, Endpoint) else record)
                for key, record in rows]
    txn.ops += [Op.put(key, record.to_json()) for key, record in rows]
    return txn


def detach(records: Records, spec: ContainerSpec, network: Network, attachment: Attachment) -> list[Op]:
    """What leaving `network` deletes: the address, free again at once, and the
    records the attachment wrote."""
    driver = drivers.driver_for(network)
    ops = [Op.delete(driver.reservations(records.keys, network.name, spec.host) + attachment.ip)]
    return ops + [Op.delete(key) for key in driver.row_keys(records.keys, network.name, spec.name)]


async def pick_address(records: Records, directory: str, network: str, subnet: str, gateway: str,
                       randomize: bool, descending: bool = False) -> str:
    """The lowest free address; after a lost race a random free one, so that
    controllers that collided once do not keep colliding on the same address."""
    reserved, _ = await records.etcd.get_prefix(directory, keys_only=True)  # the keys are the addresses
    taken = {kv.key.rsplit("/", 1)[1] for kv in reserved}
    net = parse_subnet(subnet, bounded=False)
    hint = None
    if randomize:
        hint = str(net.network_address + random.randrange(1, net.num_addresses - 1))
    return next_free_ip(net, gateway, taken, hint, network=network, descending=descending)


async def publish(records: Records, spec: ContainerSpec, ports: tuple[PortMapping, ...], randomize: bool) -> Txn:
    """Reserve the host ports of `ports` on the spec's host (choosing free ones
    for host port 0) and record the final mappings in the spec, in the order given."""
    txn = Txn()
    if not ports:
        return txn
    taken = await ports_taken(records, spec.host)
    # A port of the routing mesh is open on every host: no container may take it,
    # and no service may take it meanwhile (the transaction compares the services).
    mesh, services_read_at = await mesh_ports(records)
    txn.compares.append(Compare.prefix_unchanged_since(records.keys.services(), services_read_at))
    # The ports asked for by number are reserved before any is chosen, so that a
    # chosen one never lands on a port asked for later in the same request
    # (`-p 80 -p 32768:8080`).
    chosen: dict[tuple[str, int], str] = {}
    for mapping in ports:
        key = (mapping.protocol, mapping.host_port)
        if not mapping.host_port:
            continue
        owner = taken.get(key) or chosen.get(key)
        if owner is not None:
            raise FailedPrecondition(
                f"host port {mapping.host_port}/{mapping.protocol} on host {spec.host!r} is already published "
                f"by container {owner!r}")
        if key in mesh:
            raise FailedPrecondition(
                f"host port {mapping.host_port}/{mapping.protocol} is published by service {mesh[key]!r} on every "
                "host (the routing mesh)")
        chosen[key] = spec.name
    final = []
    for mapping in ports:
        host_port = mapping.host_port
        if not host_port:
            start = random.choice(EPHEMERAL_PORTS) if randomize else None
            host_port = pick_host_port(mapping.protocol, set(taken) | set(chosen) | set(mesh), start)
            chosen[(mapping.protocol, host_port)] = spec.name
        final.append(dataclasses.replace(mapping, host_port=host_port, dynamic=mapping.dynamic or not mapping.host_port))
    for mapping in final:
        spec.ports.append(mapping)
        port_key = records.keys.port(spec.host, mapping.protocol, mapping.host_port)
        txn.compares.append(Compare.absent(port_key))
        txn.ops.append(Op.put(port_key, owner_json(spec)))
    return txn


async def retake(records: Records, spec: ContainerSpec, randomize: bool) -> Txn:
    """A stopped container's published ports, reserved again for its start: the
    same host ports, except that a port chosen for it (`-p 80`) taken meanwhile
    is replaced by another free one. A port it asked for by number and another
    container took meanwhile refuses the start, naming the holder."""
    held = await ports_taken(records, spec.host)
    wanted = list(spec.ports)
    spec.ports.clear()
    again = []
    for mapping in wanted:
        owner = held.get((mapping.protocol, mapping.host_port))
        if owner == spec.name:
            spec.ports.append(mapping)          # never released (it exited by itself)
        elif owner is not None and mapping.dynamic:
            again.append(dataclasses.replace(mapping, host_port=0))
        else:
            again.append(mapping)
    try:
        return await publish(records, spec, tuple(again), randomize)
    except FailedPrecondition as err:
        raise FailedPrecondition(f"cannot start container {spec.name!r}: {err}") from None


async def ports_taken(records: Records, host: str) -> dict[tuple[str, int], str]:
    """The host ports published on `host`: (protocol, port) -> the container holding it."""
    kvs, _ = await records.etcd.get_prefix(records.keys.ports(host))
    taken: dict[tuple[str, int], str] = {}
    for kv in kvs:
        port, _, protocol = records.keys.parse(kv.key)[1][1].partition("-")
        taken[(protocol, int(port))] = json.loads(kv.value).get("container", "?")
    return taken


async def mesh_ports(records: Records) -> tuple[dict[tuple[str, int], str], int]:
    """The ports the routing mesh publishes on every host: (protocol, port) -> the
    service; and the revision the services were read at."""
    found, read_at = await records.records(records.keys.services(), ServiceSpec)
    return {(p.protocol, p.host_port): service.name for _, service in found if service.publish_mode == "ingress"
            for p in service.ports}, read_at


async def container_ports(records: Records) -> tuple[dict[tuple[str, int], tuple[str, str]], int]:
    """Every host port a container publishes, on any host: (protocol, port) -> (container,
    host); and the revision they were read at."""
    kvs, read_at = await records.etcd.get_prefix(records.keys.ports_all())
    held: dict[tuple[str, int], tuple[str, str]] = {}
    for kv in kvs:
        host, port_text = records.keys.parse(kv.key)[1][:2]
        port, _, protocol = port_text.partition("-")
        held[(protocol, int(port))] = (json.loads(kv.value).get("container", "?"), host)
    return held, read_at


def pick_host_port(protocol: str, taken: set[tuple[str, int]], start: int | None = None) -> int:
    """The first free ephemeral port at or after `start` (wrapping around)."""
    first, size = EPHEMERAL_PORTS.start, len(EPHEMERAL_PORTS)
    offset0 = 0 if start is None else (start - first) % size
    for offset in range(size):
        port = first + (offset0 + offset) % size
        if (protocol, port) not in taken:
            return port
    raise ResourceExhausted(f"no free host port left for {protocol} in {first}-{first + size - 1}")


async def held(records: Records) -> list[tuple[str, dict[str, str]]]:
    """Every address and host port reservation as (key, {"container", "host", "id"})."""
    found = []
    directories = [records.keys.directory(kind) for kind in drivers.ADDRESS_KINDS] + [records.keys.ports_all()]
    for directory in directories:
        kvs, _ = await records.etcd.get_prefix(directory)
        found += [(kv.key, json.loads(kv.value)) for kv in kvs]
    return found
