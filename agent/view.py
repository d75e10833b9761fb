"""The agent's copy of what the controller says this host should have.

Fed by the stream's snapshots and deltas, tagged with the etcd revision it
reflects so a reconnect can resume from there. The reconcile loop reads it;
it never touches the kernel itself.

A network's table can hold tens of thousands of endpoints, and the loop
reads the view on every pass, woken by every change: so records are kept
by kind, and endpoints by network, each read walks only the records it
asks for, and each network's endpoints carry a change counter, so a pass
can tell, without walking them, that they did not change since it last
looked.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping

from proto import vxmesh_pb2 as pb
from proto.kinds import BY_WIRE
from proto.records import (MESH_LEG_PREFIX, ContainerSpec, ControllerInfo, Endpoint, Host, HostAlive, Network, Record,
                           ResyncRequest, ServiceVip, mesh_leg)

_NO_ENDPOINTS: Mapping[str, Endpoint] = {}


class View:
    def __init__(self, host: str):
        self.host = host
        self.revision = 0
        # Key -> record, for every record but the endpoints, which are kept
        # by network (a key names one record of one kind for good).
        self._others: dict[str, Record] = {}
        self._by_kind: dict[type, dict[str, Record]] = {}
        self._endpoints: dict[str, dict[str, Endpoint]] = {}
        self._legs: dict[str, Endpoint] = {}                  # the hosts' routing-mesh legs, by key
        # Counters: one step per change of any endpoint of a network (_changes),
        # and per snapshot, which may change every network at once (_snapshots).
        self._changes: dict[str, int] = {}
        self._snapshots = 0
        # Wall-clock time of the last update applied: the start of an
        # agent's share of a change, for the timing lines reconcile logs.
        self.updated_at = 0.0

    def apply(self, update: pb.ViewUpdate) -> None:
        if update.snapshot:
            self._others, self._by_kind, self._endpoints, self._legs = {}, {}, {}, {}
            self._snapshots += 1
        for change in update.changes:
            kind = change.WhichOneof("record")
            self._drop(change.key)
            if not change.deleted and kind is not None:
                self._put(change.key, BY_WIRE[kind].record.from_wire(getattr(change, kind)))
        self.revision = update.revision
        self.updated_at = time.time()

    def _drop(self, key: str) -> None:
        # A network's endpoints are found by its few networks, not by a map of every key.
        network = next((name for name, endpoints in self._endpoints.items() if key in endpoints), None)
        if network is not None:
            del self._endpoints[network][key]
            if not self._endpoints[network]:
                del self._endpoints[network]
            self._changes[network] = self._changes.get(network, 0) + 1
            self._legs.pop(key, None)
            return
        record = self._others.pop(key, None)
        if record is not None:
            del self._by_kind[type(record)][key]

    def _put(self, key: str, record: Record) -> None:
        if isinstance(record, Endpoint):
            record = _compact(record)
            self._endpoints.setdefault(record.network, {})[key] = record
            self._changes[record.network] = self._changes.get(record.network, 0) + 1
            if record.container.startswith(MESH_LEG_PREFIX):
                self._legs[key] = record
        else:
            self._others[key] = record
            self._by_kind.setdefault(type(record), {})[key] = record

    def _of(self, kind: type) -> list:
        return list(self._by_kind.get(kind, {}).values())

    def containers(self) -> dict[str, ContainerSpec]:
        """Desired containers on this host, by name."""
        return {r.name: r for r in self._of(ContainerSpec) if r.host == self.host}

    def networks(self) -> dict[str, Network]:
        """The networks this host takes part in: those its containers attach to, and
        those it has a routing-mesh leg in."""
        wanted = {net for spec in self.containers().values() for net in spec.networks}
        wanted |= {leg.network for leg in self.mesh_legs()}
        return {r.name: r for r in self._of(Network) if r.name in wanted}

    def endpoints(self, network: str) -> list[Endpoint]:
        return list(self._endpoints.get(network, _NO_ENDPOINTS).values())

    def endpoints_by_key(self, network: str) -> Mapping[str, Endpoint]:
        """The endpoints of `network` by key, as held now (not a copy: read it before
        the next update is applied, or copy it)."""
        return self._endpoints.get(network, _NO_ENDPOINTS)

    def endpoints_changed(self, network: str) -> tuple[int, int]:
        """A stamp that differs from an earlier one of the same network exactly when
        an endpoint of it may have changed since (added, replaced or removed)."""
        return self._snapshots, self._changes.get(network, 0)

    def all_endpoints(self) -> list[Endpoint]:
        return [r for endpoints in self._endpoints.values() for r in endpoints.values()]

    def mesh_legs(self) -> list[Endpoint]:
        """This host's legs into networks of the routing mesh."""
        leg = mesh_leg(self.host)
        return [r for r in self._legs.values() if r.container == leg]

    def all_vips(self) -> list[ServiceVip]:
        return self._of(ServiceVip)

    def vips(self, network: str) -> list[ServiceVip]:
        """The services' VIPs on `network` and their backends."""
        return [r for r in self._of(ServiceVip) if r.network == network]

    def hosts(self) -> dict[str, Host]:
        return {r.name: r for r in self._of(Host)}

    def controllers(self) -> list[ControllerInfo]:
        """The controllers serving now, with the etcd cluster they use."""
        return self._of(ControllerInfo)

    def resync_asked(self) -> float:
        """When a controller last asked this host to report every status again (0: never)."""
        return max((r.asked_at for r in self._of(ResyncRequest) if r.host == self.host), default=0.0)

    def peer_vteps(self) -> dict[str, str]:
        """name -> VTEP address of every other registered host, alive or not:
        the peers this host probes (agent/probes.py)."""
        return {name: host.vtep for name, host in self.hosts().items() if name != self.host}

    def live_vteps(self) -> set[str]:
        """The VTEP addresses of the other hosts that are alive now."""
        hosts = self.hosts()
        return {hosts[r.host].vtep for r in self._of(HostAlive) if r.host in hosts}


def _compact(endpoint: Endpoint) -> Endpoint:
    """The same endpoint with its few distinct values shared: thousands of endpoints
    name the same network, hosts and VTEPs, each decoded as a string of its own."""
    intern = sys.intern
    return dataclasses.replace(endpoint, network=intern(endpoint.network), host=intern(endpoint.host),
                               vtep=intern(endpoint.vtep), aliases=intern(endpoint.aliases),
                               engine=intern(endpoint.engine))
