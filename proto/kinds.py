"""The one table of record kinds: where each lives in etcd, its class, its wire field, who sees it.

Everything that handles records by kind is derived from `KINDS`: the key
layout (controller/keys.py), the controller's index and its per-agent views
(controller/index.py, controller/view.py), which agent streams a change
wakes (controller/interest.py), and how the agent decodes what arrives
(agent/view.py). Adding a kind of record is one row here, its dataclass in
proto/records.py and, if agents receive it, a field in `Change` in
proto/vxmesh.proto (tests/unit/test_kinds.py checks the two agree).

Audiences, the rule "which host may see which record":
    NOBODY       controller-only state (statuses, reservations)
    EVERY_HOST   every agent (host records: their VTEPs and MTUs; the
                 controllers serving now and the etcd cluster they use)
    OTHER_HOSTS  every agent but the one the key names (liveness of peers)
    PLACED_HOST  the agent of the host the record is placed on (containers)
    MEMBERS      the agents of hosts taking part in the network the key names
                 (a network and its table rows)
"""
from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from proto.records import (
    ContainerSpec,
    ContainerStatus,
    ControllerInfo,
    Endpoint,
    Host,
    HostAlive,
    Network,
    Reachability,
    Record,
    ResyncRequest,
    ServiceSpec,
    ServiceVip,
)


class Audience(enum.Enum):
    NOBODY = "nobody"
    EVERY_HOST = "every host"
    OTHER_HOSTS = "other hosts"
    PLACED_HOST = "placed host"
    MEMBERS = "network members"

    def reaches(self, subject: str, host: str, networks: Collection[str]) -> bool:
        """Whether the agent of `host`, holding the tables of `networks`, is in this
        audience; `subject` is the host or network `Kind.audience_of` named."""
        if self is Audience.EVERY_HOST:
            return True
        if self is Audience.OTHER_HOSTS:
            return subject != host
        if self is Audience.PLACED_HOST:
            return subject == host
        if self is Audience.MEMBERS:
            return subject in networks
        return False


@dataclass(frozen=True)
class Kind:
    name: str                     # what code calls it: "endpoint"
    directory: str                # its etcd directory under the prefix: "endpoints"
    parts: tuple[str, ...]        # what the key's name parts are: ("network", "container")
    record: type[Record] | None   # the value's record class; None: a reservation, plain JSON
    wire: str | None              # its field in Change.record (proto/vxmesh.proto); None: never streamed
    audience: Audience

    def audience_of(self, parts: tuple[str, ...], record: Record | None) -> tuple[Audience, str]:
        """Who sees this record, and the host or network that names them ("" where
        the audience names none). `record` is the new or old value (for PLACED_HOST)."""
        if self.audience is Audience.MEMBERS:
            return self.audience, parts[0]
        if self.audience is Audience.OTHER_HOSTS:
            return self.audience, parts[0]
        if self.audience is Audience.PLACED_HOST:
            return self.audience, getattr(record, "host", "") if record is not None else ""
        return self.audience, ""


KINDS: tuple[Kind, ...] = (
    Kind("network", "networks", ("network",), Network, "network", Audience.MEMBERS),
    Kind("vni", "vnis", ("vni",), None, None, Audience.NOBODY),
    Kind("ipam", "ipam", ("network", "ip"), None, None, Audience.NOBODY),
    Kind("local-ipam", "local-ipam", ("network", "host", "ip"), None, None, Audience.NOBODY),
    Kind("port", "ports", ("host", "port-protocol"), None, None, Audience.NOBODY),
    Kind("host", "hosts", ("host",), Host, "host", Audience.EVERY_HOST),
    # Written by the controllers' liveness rule (controller/liveness.py): the host is in every table.
    Kind("alive", "alive", ("host",), HostAlive, "alive", Audience.OTHER_HOSTS),
    # Written with a lease by the controller holding the host's agent stream:
    # exists exactly while the agent is connected.
    Kind("agent", "agents", ("host",), None, None, Audience.NOBODY),
    # An agent's probes of its peers' VTEPs, under the same lease as its agents/ key.
    Kind("reach", "reach", ("reporter",), Reachability, None, Audience.NOBODY),
    # What a client's request did, written with the change, kept a while (controller/store/requests.py).
    Kind("request", "requests", ("request",), None, None, Audience.NOBODY),
    # One per host, overwritten: the agent re-sends every status when it changes.
    Kind("resync", "resync", ("host",), ResyncRequest, "resync", Audience.PLACED_HOST),
    Kind("container", "containers", ("container",), ContainerSpec, "container", Audience.PLACED_HOST),
    Kind("status", "status", ("container",), ContainerStatus, None, Audience.NOBODY),
    Kind("endpoint", "endpoints", ("network", "container"), Endpoint, "endpoint", Audience.MEMBERS),
    # Written by each controller with its own lease: exists exactly while it runs.
    Kind("controller", "controllers", ("controller",), ControllerInfo, "controller", Audience.EVERY_HOST),
    # Services are the controllers' business: agents see only the containers of their tasks.
    Kind("service", "services", ("service",), ServiceSpec, None, Audience.NOBODY),
    # A service's VIP on a network and its backends: every host on the network load-balances it.
    Kind("vip", "vips", ("network", "service"), ServiceVip, "vip", Audience.MEMBERS),
    # The identity of the controller leading a role ("services"), bound to its lease;
    # its mod revision fences every write the leader makes (controller/services/election.py).
    Kind("leader", "leaders", ("role",), None, None, Audience.NOBODY),
)

BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
BY_DIRECTORY: dict[str, Kind] = {kind.directory: kind for kind in KINDS}
BY_WIRE: dict[str, Kind] = {kind.wire: kind for kind in KINDS if kind.wire is not None}
# Record class -> its wire field, for encoding a view change.
WIRE_OF: dict[type, str] = {kind.record: kind.wire for kind in KINDS if kind.wire is not None and kind.record}
STREAMED: frozenset[str] = frozenset(kind.name for kind in KINDS if kind.wire is not None)
