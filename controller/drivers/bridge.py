"""The bridge driver: a network made on each host separately, as Docker's bridge.

Each host has its own bridge for the network, so addresses repeat across
hosts and are reserved per host under local-ipam/<network>/<host>/. Nothing
an attachment writes is for other hosts: no endpoint rows, no tables, no
VNI. `network inspect` lists its endpoints from the container specs.

The pre-defined network `bridge` (Docker's default, `docker0`) has no
subnet of its own: each host's agent brings one (`--bridge-subnet`).
"""
from __future__ import annotations

from controller.drivers.base import LOCAL, Driver, Reads
from controller.etcd import Compare, Op, Txn
from controller.keys import Keys
from proto.addresses import default_gateway, parse_subnet
from proto.errors import FailedPrecondition
from proto.records import ContainerSpec, Endpoint, Host, Network


class BridgeDriver(Driver):
    name = "bridge"
    scope = LOCAL
    creatable = True
    attachable = True
    builtin = "bridge"
    address_kind = "local-ipam"

    async def endpoints(self, reads: Reads, network: Network) -> tuple[list[Endpoint], int]:
        specs, revision = await reads.records(reads.keys.containers(), ContainerSpec)
        return [
            Endpoint(network=network.name, container=spec.name, host=spec.host, vtep="", ip=a.ip, mac=a.mac,
                     container_id=spec.id)
            for _, spec in specs for a in spec.attachments if a.network == network.name
        ], revision

    def removal(self, keys: Keys, network: Network, read_at: int) -> Txn:
        # Nobody may attach while we look: attachments live in the specs.
        return Txn([Compare.prefix_unchanged_since(keys.containers(), read_at)],
                   [Op.delete_prefix(keys.local_ipam_network(network.name))])

    def reservations(self, keys: Keys, network: str, host: str) -> str:
        return keys.local_ipam_host(network, host)

    def subnet_for(self, network: Network, host: Host) -> tuple[str, str]:
        if network.subnet:
            return network.subnet, network.gateway
        # The default bridge: the host's own subnet.
        if not host.bridge_subnet:
            raise FailedPrecondition(f"host {host.name!r} has no default bridge subnet configured")
        return host.bridge_subnet, default_gateway(parse_subnet(host.bridge_subnet, "bridge subnet", bounded=False))


DRIVER = BridgeDriver()
