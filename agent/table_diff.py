"""The difference between the table a network should have and what the kernel has.

Pure logic: given the remote endpoints of one network and the FDB and
neighbour entries read back from the kernel, say exactly what to put and
what to delete. Running it after a restart or a missed event is what makes
stale entries heal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from proto.records import Endpoint


@dataclass
class TablePlan:
    fdb_put: dict[str, str] = field(default_factory=dict)     # mac -> vtep
    fdb_del: list[str] = field(default_factory=list)          # macs
    neigh_put: dict[str, str] = field(default_factory=dict)   # ip -> mac
    neigh_del: list[str] = field(default_factory=list)        # ips

    def __bool__(self) -> bool:
        return bool(self.fdb_put or self.fdb_del or self.neigh_put or self.neigh_del)

    @property
    def size(self) -> int:
        return len(self.fdb_put) + len(self.fdb_del) + len(self.neigh_put) + len(self.neigh_del)


def desired_entries(endpoints: Iterable[Endpoint], local_host: str) -> tuple[dict[str, str], dict[str, str]]:
    """FDB (mac -> vtep) and neighbour (ip -> mac) entries for the remote endpoints.

    Local endpoints need none: the bridge learns them from their veth ports.
    """
    fdb: dict[str, str] = {}
    neigh: dict[str, str] = {}
    for ep in endpoints:
        if ep.host == local_host:
            continue
        fdb[ep.mac.lower()] = ep.vtep
        neigh[ep.ip] = ep.mac.lower()
    return fdb, neigh


def plan(want_fdb: dict[str, str], want_neigh: dict[str, str],
         have_fdb: dict[str, str], have_neigh: dict[str, str]) -> TablePlan:
    result = TablePlan()
    result.fdb_put = {mac: vtep for mac, vtep in want_fdb.items() if have_fdb.get(mac) != vtep}
    result.fdb_del = sorted(mac for mac in have_fdb if mac not in want_fdb)
    result.neigh_put = {ip: mac for ip, mac in want_neigh.items() if have_neigh.get(ip) != mac}
    result.neigh_del = sorted(ip for ip in have_neigh if ip not in want_neigh)
    return result
