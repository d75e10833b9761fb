"""Filling etcd with a large, consistent state quickly, for the benchmarks to stand on.

Creating 10,000 containers through the user API would measure the API, and
take minutes; the benchmarks need the state to exist. This writes exactly the
records `Store.create_container` writes for a container (spec, status,
address, endpoint), many containers per transaction, each guarded by
create-if-absent compares so it never overwrites anything. The containers
are stopped ones (desired "stopped", status "exited"): as in Docker, a
stopped container keeps its address and its row in every table, and no
agent has to start anything.

Hosts without an agent ("ghost" hosts) can be registered with their agents/
key bound to a lease this module keeps, and their alive key, so they count
as connected and their endpoints as live (controller/liveness.py).
"""
from __future__ import annotations

import ipaddress
import secrets
import time
from dataclasses import dataclass

from controller.etcd import Compare, Etcd, Op
from proto.addresses import mac_for_ip
from controller.keys import Keys
from proto.records import Attachment, ContainerSpec, ContainerStatus, Endpoint, Host, HostAlive

# etcd refuses transactions of more than 128 operations by default.
CONTAINERS_PER_TXN = 25
GHOST_TTL = 3600


@dataclass(frozen=True)
class Placement:
    name: str
    host: str
    vtep: str
    ip: str


def placements(prefix: str, hosts: dict[str, str], count: int, subnet: str, first_offset: int) -> list[Placement]:
    """`count` containers named prefix-00000.., spread round-robin over `hosts`
    (name -> vtep), with addresses from `first_offset` into `subnet`."""
    net = ipaddress.IPv4Network(subnet)
    names = sorted(hosts)
    if first_offset + count >= net.num_addresses - 1:
        raise ValueError(f"{count} addresses from offset {first_offset} do not fit in {subnet}")
    return [Placement(f"{prefix}-{i:05d}", names[i % len(names)], hosts[names[i % len(names)]],
                      str(net.network_address + first_offset + i)) for i in range(count)]


async def write_containers(etcd: Etcd, keys: Keys, network: str, spots: list[Placement]) -> int:
    """Write the stopped containers; returns the revision of the last write."""
    revision = 0
    for start in range(0, len(spots), CONTAINERS_PER_TXN):
        compares, ops = [], []
        for spot in spots[start:start + CONTAINERS_PER_TXN]:
            mac = mac_for_ip(spot.ip)
            spec = ContainerSpec(id=secrets.token_hex(32), name=spot.name, host=spot.host,
                                 command=["sleep", "infinity"], hostname=spot.name, desired="stopped",
                                 attachments=[Attachment(network=network, ip=spot.ip, mac=mac)],
                                 created_at=time.time())
            status = ContainerStatus(name=spot.name, id=spec.id, state="exited", host=spot.host,
                                     finished_at=time.time(), networks=[])
            endpoint = Endpoint(network=network, container=spot.name, host=spot.host, vtep=spot.vtep,
                                ip=spot.ip, mac=mac)
            owner = f'{{"container": "{spot.name}", "host": "{spot.host}", "id": "{spec.id}"}}'.encode()
            writes = {
                keys.container(spot.name): spec.to_json(),
                keys.status(spot.name): status.to_json(),
                keys.ipam(network, spot.ip): owner,
                keys.endpoint(network, spot.name): endpoint.to_json(),
            }
            compares += [Compare.absent(key) for key in writes]
            ops += [Op.put(key, value) for key, value in writes.items()]
        result = await etcd.txn(compares, ops)
        if not result.succeeded:
            raise RuntimeError(f"preseeding containers from {spots[start].name}: some keys already exist")
        revision = result.revision
    return revision


async def register_ghost_hosts(etcd: Etcd, keys: Keys, hosts: dict[str, str]) -> int:
    """Register hosts (name -> vtep) that have no agent and mark them alive on a
    lease of our own; returns the lease, to revoke when done."""
    lease = await etcd.grant(GHOST_TTL)
    names = sorted(hosts)
    for start in range(0, len(names), 40):
        ops = []
        for name in names[start:start + 40]:
            host = Host(name=name, vtep=hosts[name], api="127.0.0.1:9", registered_at=time.time(), state="")
            ops += [Op.put(keys.host(name), host.to_json()),
                    Op.put(keys.agent(name), b'{"controller": "vxbench-preseed"}', lease=lease),
                    Op.put(keys.alive(name), HostAlive(name, since=time.time()).to_json())]
        await etcd.txn([], ops)
    return lease


def ghost_hosts(prefix: str, count: int) -> dict[str, str]:
    """name -> vtep for `count` ghost hosts."""
    return {f"{prefix}{i:03d}": f"10.250.{i // 250}.{1 + i % 250}" for i in range(count)}
