"""The agent's copy of what the controller says this host should have.

Fed by the stream's snapshots and deltas, tagged with the etcd revision it
reflects so a reconnect can resume from there. The reconcile loop reads it;
it never touches the kernel itself.
"""
from __future__ import annotations

import time

from proto import vxmesh_pb2 as pb
from proto.kinds import BY_WIRE
from proto.records import (ContainerSpec, ControllerInfo, Endpoint, Host, HostAlive, Network, Record,
                           ResyncRequest, ServiceVip, mesh_leg)


class View:
    def __init__(self, host: str):
        self.host = host
        self.revision = 0
        self.records: dict[str, Record] = {}
        # Wall-clock time of the last update applied: the start of an
        # agent's share of a change, for the timing lines reconcile logs.
        self.updated_at = 0.0

    def apply(self, update: pb.ViewUpdate) -> None:
        if update.snapshot:
            self.records = {}
        for change in update.changes:
            kind = change.WhichOneof("record")
            if change.deleted or kind is None:
                self.records.pop(change.key, None)
            else:
                self.records[change.key] = BY_WIRE[kind].record.from_wire(getattr(change, kind))
        self.revision = update.revision
        self.updated_at = time.time()

    def containers(self) -> dict[str, ContainerSpec]:
        """Desired containers on this host, by name."""
        return {r.name: r for r in self.records.values()
                if isinstance(r, ContainerSpec) and r.host == self.host}

    def networks(self) -> dict[str, Network]:
        """The networks this host takes part in: those its containers attach to, and
        those it has a routing-mesh leg in."""
        wanted = {net for spec in self.containers().values() for net in spec.networks}
        wanted |= {leg.network for leg in self.mesh_legs()}
        return {r.name: r for r in self.records.values() if isinstance(r, Network) and r.name in wanted}

    def endpoints(self, network: str) -> list[Endpoint]:
        return [r for r in self.records.values() if isinstance(r, Endpoint) and r.network == network]

    def all_endpoints(self) -> list[Endpoint]:
        return [r for r in self.records.values() if isinstance(r, Endpoint)]

    def mesh_legs(self) -> list[Endpoint]:
        """This host's legs into networks of the routing mesh."""
        leg = mesh_leg(self.host)
        return [r for r in self.records.values() if isinstance(r, Endpoint) and r.container == leg]

    def all_vips(self) -> list[ServiceVip]:
        return [r for r in self.records.values() if isinstance(r, ServiceVip)]

    def vips(self, network: str) -> list[ServiceVip]:
        """The services' VIPs on `network` and their backends."""
        return [r for r in self.records.values() if isinstance(r, ServiceVip) and r.network == network]

    def hosts(self) -> dict[str, Host]:
        return {r.name: r for r in self.records.values() if isinstance(r, Host)}

    def controllers(self) -> list[ControllerInfo]:
        """The controllers serving now, with the etcd cluster they use."""
        return [r for r in self.records.values() if isinstance(r, ControllerInfo)]

    def resync_asked(self) -> float:
        """When a controller last asked this host to report every status again (0: never)."""
        return max((r.asked_at for r in self.records.values()
                    if isinstance(r, ResyncRequest) and r.host == self.host), default=0.0)

    def peer_vteps(self) -> dict[str, str]:
        """name -> VTEP address of every other registered host, alive or not:
        the peers this host probes (agent/probes.py)."""
        return {name: host.vtep for name, host in self.hosts().items() if name != self.host}

    def live_vteps(self) -> set[str]:
        """The VTEP addresses of the other hosts that are alive now."""
        hosts = self.hosts()
        return {hosts[r.host].vtep for r in self.records.values()
                if isinstance(r, HostAlive) and r.host in hosts}
