"""Name records: which names resolve to which addresses, on which network.

A `NameRecord` is the one shape the resolver knows: a name, the network it
is visible on, its addresses and what it came from. Containers give one per
network per name (their name, their short id, each alias), built here from
the view: the endpoints of overlay networks (every host's containers) and
this host's own containers (local bridges). Services add theirs (a
service's name and VIP, `tasks.NAME` and its tasks' addresses) from the
leader's backends records, under their own `source`; the resolver answers
them unchanged.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from proto.records import MESH_LEG_PREFIX, ContainerSpec, Endpoint, Network, ServiceVip

# Docker resolves a container by the first 12 characters of its id too.
SHORT_ID = 12


@dataclass(frozen=True)
class NameRecord:
    name: str                 # lower case, no trailing dot
    network: str
    addresses: tuple[str, ...]
    source: str               # "container:<name>" (later "service:<name>", ...)


def container_names(name: str, container_id: str, aliases: Iterable[str]) -> list[str]:
    names = [name] + ([container_id[:SHORT_ID]] if container_id else []) + list(aliases)
    return list(dict.fromkeys(n.lower().rstrip(".") for n in names if n))


def container_records(networks: dict[str, Network], endpoints: Iterable[Endpoint],
                      local: Iterable[ContainerSpec], host: str) -> list[NameRecord]:
    """The name records of the containers on user networks this host holds:
    never the default bridge (Docker gives it no names), and a local-scope
    network's only from this host (a bridge network is per host). `local` are
    this host's running containers; the endpoints of other hosts' that do not
    run say so (`stopped`)."""
    records: dict[tuple[str, str], NameRecord] = {}

    def add(network: str, container: str, names: list[str], ip: str) -> None:
        net = networks.get(network)
        if net is None or net.builtin:
            return
        for name in names:
            records[(network, f"{container}/{name}")] = NameRecord(name, network, (ip,), f"container:{container}")

    for spec in local:
        for attachment in spec.attachments:
            add(attachment.network, spec.name, container_names(spec.name, spec.id, attachment.aliases),
                attachment.ip)
    for endpoint in endpoints:
        if endpoint.host == host or networks.get(endpoint.network) is None:
            continue
        if endpoint.container.startswith(MESH_LEG_PREFIX):
            continue        # a host's routing-mesh leg: no container, no name
        if endpoint.stopped:
            continue        # as in Docker, a container that is not running has no name
        add(endpoint.network, endpoint.container,
            container_names(endpoint.container, endpoint.container_id, endpoint.aliases.split()), endpoint.ip)
    return list(records.values())


def service_records(networks: dict[str, Network], vips: Iterable[ServiceVip]) -> list[NameRecord]:
    """The names of services (controller/services/): on each of its networks, the
    service's name answers its VIP (dnsrr: its running tasks' addresses) and
    tasks.NAME its running tasks' addresses, as Docker's embedded DNS does. The
    tasks' own names (NAME.SLOT.SUFFIX) are container names already."""
    records = []
    for vip in vips:
        if vip.network not in networks:
            continue
        name = vip.service.lower()
        source = f"service:{vip.service}"
        records.append(NameRecord(name, vip.network, (vip.vip,) if vip.vip else tuple(vip.backends), source))
        records.append(NameRecord(f"tasks.{name}", vip.network, tuple(vip.backends), source))
    return [r for r in records if r.addresses]


class NameTable:
    """Name records by network and name, for the resolver's lookups."""

    def __init__(self, records: Iterable[NameRecord] = ()) -> None:
        self._by_network: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for record in records:
            addresses = self._by_network[record.network][record.name]
            addresses += [a for a in record.addresses if a not in addresses]

    def lookup(self, name: str, networks: Iterable[str]) -> list[str] | None:
        """The addresses `name` has on any of `networks` (the asker's), None when
        it has none there: names on other networks stay invisible."""
        name = name.lower().rstrip(".")
        found: list[str] = []
        for network in networks:
            for address in self._by_network.get(network, {}).get(name, ()):
                if address not in found:
                    found.append(address)
        return found or None
