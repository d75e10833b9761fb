"""What a network driver decides on the controller's side, and what most drivers leave as is.

A driver is a stateless object (one per driver, see the registry in
__init__.py). The store asks it, never the driver's name: whether `network
create` may make such a network and with which options, what the network
reserves when it is made and frees when it goes, whether containers attach
to it, where an attachment's address comes from and which records it
writes for other hosts to see. The agent has its own half of each driver
(what to build in the kernel).

The defaults here are a driver that reserves nothing, cannot be created or
attached to, and writes no records: Docker's `host` and `null` are exactly
that. Reads go through `Reads` (the store's record reader), writes are
returned as a `Txn` for the caller's one transaction, so a driver never
commits anything by itself.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, TypeVar

from controller.etcd import KV, Etcd, Txn
from controller.keys import Keys
from proto.errors import InvalidArgument
from proto.records import Attachment, ContainerSpec, Endpoint, Host, Network, Record

R = TypeVar("R", bound=Record)

GLOBAL = "global"   # one network across hosts (Docker's "swarm" scope)
LOCAL = "local"     # instantiated on each host separately

# Docker takes `--opt encrypted` and `--opt encrypted=true` alike.
TRUE = ("", "true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class NetworkRequest:
    """`network create` as the user asked for it."""
    name: str
    subnet: str
    gateway: str = ""
    vni: int = 0
    driver: str = ""
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Option:
    """A `--opt KEY[=true|false]` a driver takes; `ability` completes "only overlay
    networks can ..." when another driver is given it."""
    key: str
    ability: str


class Reads(Protocol):
    """What a driver may read: the store's decoded records (controller/store/records.py)."""
    etcd: Etcd
    keys: Keys

    async def records(self, prefix: str, cls: type[R]) -> tuple[list[tuple[KV, R]], int]: ...


class Driver:
    name: ClassVar[str]
    scope: ClassVar[str]                      # GLOBAL or LOCAL, written into Network.scope
    creatable: ClassVar[bool] = False         # `network create --driver NAME` may make one
    attachable: ClassVar[bool] = False        # containers get an interface on its networks
    builtin: ClassVar[str] = ""               # the network every installation has with this driver
    takes_vni: ClassVar[bool] = False         # `network create --vni`
    options: ClassVar[tuple[Option, ...]] = ()
    # The kind (proto/kinds.py) whose keys reserve its attachments' addresses.
    address_kind: ClassVar[str] = ""

    async def check_create(self, request: NetworkRequest, flags: Mapping[str, bool]) -> None:
        """Refuse, before anything is read or written, what this driver cannot make.
        `flags` are the request's options, already known to be this driver's."""

    async def reserve(self, reads: Reads, network: Network) -> tuple[Network, Txn]:
        """What the new `network` holds exclusively (read now, guarded by the returned
        compares), and the record with what was picked for it."""
        return network, Txn()

    async def endpoints(self, reads: Reads, network: Network) -> tuple[list[Endpoint], int]:
        """The network's attachments as `network inspect` lists them, and the revision
        they were read at (a removal is guarded on it)."""
        return [], 0

    def removal(self, keys: Keys, network: Network, read_at: int) -> Txn:
        """What removing the network (found without endpoints at `read_at`) must
        guard and delete besides its record."""
        return Txn()

    def check_attachable(self, network: Network) -> None:
        if not self.attachable:
            raise InvalidArgument(
                f"network {network.name!r} (driver {network.driver}) is a mode, not a network to attach: "
                f"use --network {network.name} alone")

    def reservations(self, keys: Keys, network: str, host: str) -> str:
        """The etcd directory of the addresses an attachment on `host` takes from."""
        raise NotImplementedError(f"driver {self.name} has no addresses")

    def subnet_for(self, network: Network, host: Host) -> tuple[str, str]:
        """The subnet and gateway an attachment on `host` gets its address from."""
        return network.subnet, network.gateway

    def rows(self, keys: Keys, network: Network, spec: ContainerSpec, host: Host,
             attachment: Attachment) -> list[tuple[str, Record]]:
        """The records (key, value) an attachment writes besides its address, for
        other hosts to see; `row_keys` names the same keys for a detach."""
        return []

    def row_keys(self, keys: Keys, network: str, container: str) -> list[str]:
        return []
