"""The overlay driver: one network across hosts over VXLAN, as Docker's overlay.

Each network holds a VNI of its own (reserved under vnis/ when it is made)
and one subnet for the whole cluster, so its addresses are reserved
cluster-wide under ipam/<network>/. An attachment writes the endpoint row
(MAC/IP -> VTEP) every host taking part in the network receives in its
table; that row is what makes the container reachable from other hosts.

`--opt encrypted` asks for IPsec between the VTEPs. vxmesh refuses it
rather than create a network that would silently travel in clear, naming
what the kernel lacks (overlay_esp.py); docs/encryption.md has the design.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from controller.drivers.base import GLOBAL, Driver, NetworkRequest, Option, Reads
from controller.drivers.overlay_esp import esp_missing
from controller.etcd import Compare, Op, Txn
from controller.keys import Keys
from proto import validate
from proto.errors import AlreadyExists, FailedPrecondition, ResourceExhausted
from proto.records import Attachment, ContainerSpec, Endpoint, Host, Network, Record

ENCRYPTED = "encrypted"


def next_free_vni(taken: set[int]) -> int:
    """The lowest VNI from AUTO_VNI_START up that no network holds."""
    for vni in range(validate.AUTO_VNI_START, validate.VNI_MAX + 1):
        if vni not in taken:
            return vni
    raise ResourceExhausted(f"no free VNI left between {validate.AUTO_VNI_START} and {validate.VNI_MAX}")


class OverlayDriver(Driver):
    name = "overlay"
    scope = GLOBAL
    creatable = True
    attachable = True
    takes_vni = True
    options = (Option(ENCRYPTED, "be encrypted"),)
    address_kind = "ipam"

    async def check_create(self, request: NetworkRequest, flags: Mapping[str, bool]) -> None:
        if request.vni:
            validate.vni(request.vni)
        if flags.get(ENCRYPTED):
            # Refused before etcd is touched: a network asked to be encrypted
            # must never exist unencrypted.
            missing = await esp_missing()
            if missing is not None:
                raise FailedPrecondition(f"cannot create encrypted network {request.name!r}: "
                                         f"encrypted overlays need IPsec ESP (xfrm), and {missing}")
            raise FailedPrecondition(f"cannot create encrypted network {request.name!r}: the kernel "
                                     "has ESP, but vxmesh does not encrypt overlays yet "
                                     "(docs/encryption.md)")

    async def reserve(self, reads: Reads, network: Network) -> tuple[Network, Txn]:
        """The VNI asked for, or the lowest free one."""
        kvs, _ = await reads.etcd.get_prefix(reads.keys.vnis())
        owners = {int(reads.keys.parse(kv.key)[1][0]): kv.value.decode() for kv in kvs}
        if network.vni in owners:
            raise AlreadyExists(f"VNI {network.vni} is already used by network {owners[network.vni]!r}")
        network = dataclasses.replace(network, vni=network.vni or next_free_vni(set(owners)))
        key = reads.keys.vni(network.vni)
        return network, Txn([Compare.absent(key)], [Op.put(key, network.name.encode())])

    async def endpoints(self, reads: Reads, network: Network) -> tuple[list[Endpoint], int]:
        records, revision = await reads.records(reads.keys.endpoints(network.name), Endpoint)
        return [endpoint for _, endpoint in records], revision

    def removal(self, keys: Keys, network: Network, read_at: int) -> Txn:
        # No endpoint may appear meanwhile: an attachment writes one with its
        # address. (Stopped containers' endpoints, found at `read_at`, are deleted
        # with the network.)
        return Txn([Compare.prefix_unchanged_since(keys.endpoints(network.name), read_at)],
                   [Op.delete(keys.vni(network.vni)), Op.delete_prefix(keys.ipam_network(network.name))])

    def reservations(self, keys: Keys, network: str, host: str) -> str:
        return keys.ipam_network(network)

    def rows(self, keys: Keys, network: Network, spec: ContainerSpec, host: Host,
             attachment: Attachment) -> list[tuple[str, Record]]:
        endpoint = Endpoint(network=network.name, container=spec.name, host=host.name, vtep=host.vtep,
                            ip=attachment.ip, mac=attachment.mac, container_id=spec.id,
                            aliases=" ".join(attachment.aliases), engine=spec.engine)
        return [(keys.endpoint(network.name, spec.name), endpoint)]

    def row_keys(self, keys: Keys, network: str, container: str) -> list[str]:
        return [keys.endpoint(network, container)]


DRIVER = OverlayDriver()
