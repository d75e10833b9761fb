"""The difference between the table a network should have and what the kernel has.

Pure logic: given the remote endpoints of one network and the FDB and
neighbour entries read back from the kernel, say exactly what to put and
what to delete. Running it after a restart or a missed event is what makes
stale entries heal.

Between two such full comparisons, a change of a few endpoints of a network
of thousands is planned from those endpoints alone (`changed_keys`,
`partial_plan`), against what was last programmed.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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
        mac = ep.mac.lower()   # one string for both tables: they hold one per entry
        fdb[mac] = ep.vtep
        neigh[ep.ip] = mac
    return fdb, neigh


def plan(want_fdb: dict[str, str], want_neigh: dict[str, str],
         have_fdb: dict[str, str], have_neigh: dict[str, str]) -> TablePlan:
    result = TablePlan()
    result.fdb_put = {mac: vtep for mac, vtep in want_fdb.items() if have_fdb.get(mac) != vtep}
    result.fdb_del = sorted(mac for mac in have_fdb if mac not in want_fdb)
    result.neigh_put = {ip: mac for ip, mac in want_neigh.items() if have_neigh.get(ip) != mac}
    result.neigh_del = sorted(ip for ip in have_neigh if ip not in want_neigh)
    return result


def changed_keys(before: Mapping[str, Endpoint], now: Mapping[str, Endpoint]) -> list[str]:
    """The keys of the endpoints added, replaced or removed from `before` to `now`.

    The view puts a new record for every change, so an endpoint that is the same
    object in both did not change: no field is compared."""
    changed = [key for key, endpoint in now.items() if before.get(key) is not endpoint]
    changed += [key for key in before if key not in now]
    return changed


def partial_plan(before: Mapping[str, Endpoint], now: Mapping[str, Endpoint], changed: Iterable[str],
                 local_host: str) -> TablePlan:
    """What `plan` would say for `now` against a kernel holding the entries of
    `before` (what was last programmed), `changed` being the keys that differ.

    Only the MACs and addresses of the changed endpoints (old and new values) can
    need an entry put or deleted: every other entry is made by endpoints that are
    the same in both. For those MACs and addresses the entries on each side are
    worked out from every endpoint that has one of them, in order, as
    `desired_entries` does (another endpoint may hold the MAC or address a changed
    one gave up). Nothing but the two maps of endpoints is kept between passes."""
    macs: set[str] = set()
    ips: set[str] = set()
    for key in changed:
        for endpoint in (before.get(key), now.get(key)):
            if endpoint is not None and endpoint.host != local_host:
                macs.add(endpoint.mac.lower())
                ips.add(endpoint.ip)
    if not macs:
        return TablePlan()

    def entries(endpoints: Mapping[str, Endpoint]) -> tuple[dict[str, str], dict[str, str]]:
        fdb, neigh = desired_entries([ep for ep in endpoints.values() if ep.ip in ips or ep.mac.lower() in macs],
                                     local_host)
        return ({mac: vtep for mac, vtep in fdb.items() if mac in macs},
                {ip: mac for ip, mac in neigh.items() if ip in ips})

    return plan(*entries(now), *entries(before))

