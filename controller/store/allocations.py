"""What a container holds exclusively: an address per network, its published host ports.

Each is a key created-if-absent in the container's own transaction, so two
controllers never hand out one address or port twice. Where an address
comes from and what else an attachment writes are its network driver's
(controller/drivers/): the overlay reserves cluster-wide and writes the
endpoint row other hosts see, a bridge reserves per host and writes nothing.
"""
from __future__ import annotations

import json
import random

from controller import drivers
from controller.etcd import Compare, Op, Txn
from controller.store.records import Records, owner_json
from proto.addresses import mac_for_ip, next_free_ip, parse_ip, parse_subnet
from proto.errors import AlreadyExists, FailedPrecondition, InvalidArgument, ResourceExhausted
from proto.records import Attachment, ContainerSpec, Host, Network, PortMapping

# Where a free host port is chosen for `-p CONTAINER_PORT` (Linux's default
# ephemeral range, as Docker uses).
EPHEMERAL_PORTS = range(32768, 61000)


async def attach(records: Records, spec: ContainerSpec, network_name: str, host: Host, randomize: bool,
                 ip: str = "", mac: str = "") -> Txn:
    """Add an attachment to `spec` and return the guards and writes it needs: its
    address and the records its driver writes for it. `ip` and `mac` pin them
    (an engine's request); otherwise the lowest free address and its MAC."""
    net_kv, network = await records.network(network_name)
    driver = drivers.driver_for(network)
    driver.check_attachable(network)
    directory = driver.reservations(records.keys, network_name, host.name)
    subnet, gateway = driver.subnet_for(network, host)
    if ip:
        ip = await _check_requested(records, directory, network_name, subnet, gateway, ip)
    else:
        ip = await _pick_address(records, directory, network_name, subnet, gateway, randomize)
    attachment = Attachment(network=network_name, ip=ip, mac=mac or mac_for_ip(ip))
    spec.attachments.append(attachment)
    # The exact revision, not mere existence: a network removed and
    # re-created meanwhile may have another subnet.
    txn = Txn([Compare.mod_revision(net_kv.key, "=", net_kv.mod_revision), Compare.absent(directory + ip)],
              [Op.put(directory + ip, owner_json(spec))])
    txn.ops += [Op.put(key, record.to_json())
                for key, record in driver.rows(records.keys, network, spec, host, attachment)]
    return txn


def detach(records: Records, spec: ContainerSpec, network: Network, attachment: Attachment) -> list[Op]:
    """What leaving `network` deletes: the address, free again at once, and the
    records the attachment wrote."""
    driver = drivers.driver_for(network)
    ops = [Op.delete(driver.reservations(records.keys, network.name, spec.host) + attachment.ip)]
    return ops + [Op.delete(key) for key in driver.row_keys(records.keys, network.name, spec.name)]


async def _check_requested(records: Records, directory: str, network: str, subnet: str, gateway: str,
                           ip: str) -> str:
    """A requested address: inside the subnet, not its gateway nor its network or
    broadcast address, and free."""
    address = parse_ip(ip, f"address for network {network!r}")
    net = parse_subnet(subnet, bounded=False)
    if address not in net or address in (net.network_address, net.broadcast_address):
        raise InvalidArgument(f"address {ip} is not a usable address of network {network!r} ({subnet})")
    if str(address) == gateway:
        raise InvalidArgument(f"address {ip} is the gateway of network {network!r}")
    found = await records.etcd.get(directory + str(address))
    if found is not None:
        owner = json.loads(found.value).get("container", "?")
        raise AlreadyExists(f"address {ip} on network {network!r} is already used by {owner!r}")
    return str(address)


async def _pick_address(records: Records, directory: str, network: str, subnet: str, gateway: str,
                        randomize: bool) -> str:
    """The lowest free address; after a lost race a random free one, so that
    controllers that collided once do not keep colliding on the same address."""
    reserved, _ = await records.etcd.get_prefix(directory, keys_only=True)  # the keys are the addresses
    taken = {kv.key.rsplit("/", 1)[1] for kv in reserved}
    net = parse_subnet(subnet, bounded=False)
    hint = None
    if randomize:
        hint = str(net.network_address + random.randrange(1, net.num_addresses - 1))
    return next_free_ip(net, gateway, taken, hint, network=network)


async def publish(records: Records, spec: ContainerSpec, ports: tuple[PortMapping, ...], randomize: bool) -> Txn:
    """Reserve the host ports of `ports` on the spec's host (choosing free ones
    for host port 0) and record the final mappings in the spec."""
    txn = Txn()
    if not ports:
        return txn
    kvs, _ = await records.etcd.get_prefix(records.keys.ports(spec.host))
    taken: dict[tuple[str, int], str] = {}
    for kv in kvs:
        port, _, protocol = records.keys.parse(kv.key)[1][1].partition("-")
        taken[(protocol, int(port))] = json.loads(kv.value).get("container", "?")
    chosen: set[tuple[str, int]] = set()
    for mapping in ports:
        host_port = mapping.host_port
        if host_port and (mapping.protocol, host_port) in taken:
            raise FailedPrecondition(
                f"host port {host_port}/{mapping.protocol} on host {spec.host!r} is already published "
                f"by container {taken[(mapping.protocol, host_port)]!r}")
        if not host_port:
            start = random.choice(EPHEMERAL_PORTS) if randomize else None
            host_port = pick_host_port(mapping.protocol, set(taken) | chosen, start)
        chosen.add((mapping.protocol, host_port))
        spec.ports.append(PortMapping(mapping.protocol, host_port, mapping.container_port))
        port_key = records.keys.port(spec.host, mapping.protocol, host_port)
        txn.compares.append(Compare.absent(port_key))
        txn.ops.append(Op.put(port_key, owner_json(spec)))
    return txn


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
