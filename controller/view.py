"""What one host may see of the cluster state, and how each change alters it.

An agent's view holds: the containers placed on its host, every registered
host, the controllers serving now, which other hosts are alive (their VTEPs are the only ones it accepts
VXLAN from), and — only for the networks that have a container on this host — the
network record, the endpoints of live hosts (the MAC/IP -> VTEP table) and
the services' VIPs with their backends.
The first container of a network on the host pulls in that network's whole
table; the last one leaving withdraws it. A host out of the tables
(controller/liveness.py) has its endpoints withdrawn from every other
view until it is back; nothing is written to etcd for that, so its
addresses stay reserved meanwhile.

A host with a mesh leg in a network (an endpoint named _mesh.<host>, the
routing mesh's way into the network) takes part in it as if a container of
its own were attached.

Which host may see which kind of record is the kind's audience
(`Kind.audience_of` in proto/kinds.py); this module applies it, with the
two rules above on top: table rows follow their host's liveness, and the
containers placed on the host decide which networks' tables it holds.

This module is pure logic over the in-memory index, so the snapshot, delta
and resume rules are unit-tested without etcd or gRPC.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from controller.index import Index, StateEvent
from proto import vxmesh_pb2 as pb
from proto.kinds import BY_NAME, WIRE_OF, Audience
from proto.records import MESH_LEG_PREFIX, HostAlive, Record, mesh_leg


@dataclass(frozen=True)
class Change:
    """One put (record set) or delete (record None) of a key in a view."""
    key: str
    record: Record | None

    def to_wire(self) -> pb.Change:
        msg = pb.Change(key=self.key, deleted=self.record is None)
        if self.record is not None:
            getattr(msg, WIRE_OF[type(self.record)]).CopyFrom(self.record.to_wire())
        return msg


class AgentView:
    """The filter between the cluster state and one agent."""

    def __init__(self, host: str, index: Index, networks: Iterable[str] = ()):
        self.host = host
        self.index = index
        # The networks this agent holds tables for. A resuming agent tells us
        # which ones it had, so replayed changes are filtered as they were.
        self.networks: set[str] = set(networks)

    def snapshot(self) -> list[Change]:
        return self.cluster_changes() + self.own_changes()

    def cluster_changes(self, exclude_self: bool = True) -> list[Change]:
        """The part of a snapshot every agent shares: every host, every controller,
        the liveness of every host but its own (all of them with `exclude_self`
        False). The index's `cluster_version` moves whenever this does."""
        changes = [Change(key, host) for key, host in self.index.hosts.items()]
        changes += [Change(key, controller) for key, controller in self.index.controllers.items()]
        changes += [Change(self.index.keys.alive(name), self.index.alive_records.get(name, HostAlive(name)))
                    for name in sorted(self.index.alive) if name != self.host or not exclude_self]
        return changes

    def own_changes(self) -> list[Change]:
        """The rest of a snapshot: the containers placed on this host, and its networks' tables."""
        self.networks = self._wanted_networks()
        changes = [Change(key, spec) for key, spec in self.index.containers_on(self.host).items()]
        for name in sorted(self.networks):
            changes += self._network_rows(name)
        return changes

    def changes(self, events: list[StateEvent]) -> list[Change]:
        """The view's changes for one etcd revision's events (already applied to the index).

        Who sees a record is its kind's audience (proto/kinds.py); this only acts on it."""
        out: list[Change] = []
        membership_changed = False
        for ev in events:
            if ev.kind == "endpoint" and _is_leg_of(ev.record or ev.prev, self.host):
                membership_changed = True    # this host's mesh leg: it takes part in the network
            audience, subject = BY_NAME[ev.kind].audience_of(ev.parts, ev.record or ev.prev)
            if not audience.reaches(subject, self.host, self.networks):
                continue
            if audience is Audience.OTHER_HOSTS:
                # A peer's presence: the table rows placed on it come and go with it.
                out += self._host_liveness(subject)
            elif audience is Audience.MEMBERS:
                out.append(Change(ev.key, self._shown(ev.record)))
            else:
                out.append(Change(ev.key, ev.record))
                # What is placed on this host decides which networks' tables it holds.
                membership_changed = membership_changed or audience is Audience.PLACED_HOST
        if membership_changed:
            out += self.sync_membership()
        return out

    def sync_membership(self) -> list[Change]:
        """Bring the set of networks in line with the containers on the host."""
        wanted = self._wanted_networks()
        out: list[Change] = []
        for name in sorted(wanted - self.networks):
            out += self._network_rows(name)
        for name in sorted(self.networks - wanted):
            out.append(Change(self.index.keys.network(name), None))
            out += [Change(key, None) for key in self.index.endpoints_of(name)]
            out += [Change(key, None) for key in self.index.vips_of(name)]
        self.networks = wanted
        return out

    def _shown(self, record: Record | None) -> Record | None:
        """A record of a network's table as this host may see it: a row placed on
        another host is withheld while that host's lease is gone."""
        placed = getattr(record, "host", "")
        if placed and placed != self.host and placed not in self.index.alive:
            return None
        return record

    def _host_liveness(self, host: str) -> list[Change]:
        """A host went down or came back: its liveness record, and its endpoints withdrawn or restored.

        Decided by the index's current liveness, not the event's, so a replay
        of old events converges to the present."""
        alive = host in self.index.alive
        out = [Change(self.index.keys.alive(host),
                      self.index.alive_records.get(host, HostAlive(host)) if alive else None)]
        for name in sorted(self.networks):
            for key, endpoint in self.index.endpoints_on(name, host).items():
                out.append(Change(key, endpoint if alive else None))
        return out

    def _wanted_networks(self) -> set[str]:
        """The networks of the containers placed here, and those this host has a mesh leg in."""
        wanted = {net for spec in self.index.containers_on(self.host).values() for net in spec.networks}
        leg = mesh_leg(self.host)
        return wanted | {net for net in self.index.networks
                         if self.index.keys.endpoint(net, leg) in self.index.endpoints_on(net, self.host)}

    def _network_rows(self, name: str) -> list[Change]:
        rows: list[Change] = []
        network = self.index.networks.get(name)
        if network is not None:
            rows.append(Change(self.index.keys.network(name), network))
        rows += [Change(key, ep) for key, ep in self.index.endpoints_of(name).items() if self._shown(ep) is not None]
        rows += [Change(key, vip) for key, vip in self.index.vips_of(name).items()]
        return rows


def _is_leg_of(record: Record | None, host: str) -> bool:
    return (record is not None and getattr(record, "host", "") == host
            and getattr(record, "container", "").startswith(MESH_LEG_PREFIX))
