"""Who may send this host VXLAN: only the VTEPs of the cluster's live hosts, never a container.

A VXLAN device accepts any UDP datagram to port 4789 whose VNI it serves,
from anyone who can reach the underlay: a rogue machine on the fabric could
inject frames straight onto an overlay's bridge, addressed to a container's
MAC. This table drops UDP 4789 unless the source is a live host's VTEP, and
counts every drop in the named counter `vxlan_rejected`.

Containers are the other way in. A container's datagram to UDP 4789 of
another host leaves through the gwbridge (or a bridge network), is
masqueraded to this host's address, which is a live VTEP, and the other
host's filter lets it through: any container could inject frames into any
network, with any VNI. So UDP 4789 arriving from a container bridge
(`container_bridges`, the host-namespace bridges containers sit on) is
dropped on input and on forward, before any NAT, IPv4 and IPv6 alike, and
counted in `vxlan_from_containers`. (An overlay network's own namespace
has neither a route to the underlay nor a VXLAN socket: the devices' sockets
live in this, the host's, namespace.)

It is a table of its own (family inet, so IPv4 and IPv6 are covered by one
chain) rather than part of the `vxmesh` table, because that one is rebuilt
whole on every change, which would reset the counters and briefly reopen
the port. Here the chains and their rules are built once; as hosts join and
leave and bridges come and go, only the elements of the sets are added and
deleted, in one nft transaction. converge() is level-triggered: it reads
the table back and fixes whatever differs, rebuilding it only when its
structure drifted.

The source address is all the filter can check: it stops strangers, not a
host on the fabric that forges a live VTEP's address. docs/encryption.md
describes what would (IPsec ESP between the VTEPs).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.kernel import nft
from agent.kernel.overlay import VXLAN_PORT
from proto import validate
from proto.addresses import parse_ip

TABLE = "vxmesh_vtep"
FAMILY = "inet"
COUNTER = "vxlan_rejected"
FROM_CONTAINERS = "vxlan_from_containers"
CONTAINER_BRIDGES = "container_bridges"
# The address sets: name -> (nft address type, the payload protocol its rule matches)
VTEP_SETS = {"vteps4": ("ipv4_addr", "ip"), "vteps6": ("ipv6_addr", "ip6")}
SETS = {**{name: kind for name, (kind, _) in VTEP_SETS.items()}, CONTAINER_BRIDGES: "ifname"}
# (chain, hook) in the order they are made and listed. Before the usual
# filter priority, so a drop is counted whatever other tables decide, and
# on forward before any NAT: a dropped datagram is never masqueraded.
CHAINS = (("input", "input"), ("forward", "forward"))
PRIORITY = -10
# Each rule carries a comment naming its job: the structure check compares
# these, since nft reads expressions back in its own normal form. In the
# order nft lists them: chain by chain.
_CONTAINER_COMMENT = "no vxlan from containers ({})"
_VTEP_COMMENT = "vxlan only from live vteps ({})"
RULE_COMMENTS = (_CONTAINER_COMMENT.format("input"),
                 *(_VTEP_COMMENT.format(proto) for _, proto in VTEP_SETS.values()),
                 _CONTAINER_COMMENT.format("forward"))


@dataclass(frozen=True)
class Rejected:
    packets: int
    bytes: int


def desired_elements(vteps: Iterable[str], container_bridges: Iterable[str] = ()) -> dict[str, set[str]]:
    """The desired elements of each set; ValueError names a bad address or interface name."""
    elements: dict[str, set[str]] = {name: set() for name in SETS}
    for vtep in vteps:
        address = parse_ip(vtep, "VTEP")
        elements["vteps4" if address.version == 4 else "vteps6"].add(str(address))
    elements[CONTAINER_BRIDGES] = {validate.ifname(name) for name in container_bridges}
    return elements


async def converge(vteps: Iterable[str], container_bridges: Iterable[str] = ()) -> None:
    """Accept VXLAN from exactly `vteps` (the live hosts), drop and count the rest,
    and drop and count VXLAN arriving from `container_bridges`."""
    want = desired_elements(vteps, container_bridges)
    have = await _read()
    if have is None:
        await nft.apply(_build(want))
        return
    changes = []
    for name, elements in want.items():
        extra, missing = have[name] - elements, elements - have[name]
        if extra:
            changes.append({"delete": {"element": _set_elements(name, extra)}})
        if missing:
            changes.append({"add": {"element": _set_elements(name, missing)}})
    if changes:
        await nft.apply(changes)


async def remove() -> None:
    """The filter switched off: no table, VXLAN from anywhere is accepted."""
    ref = {"table": {"family": FAMILY, "name": TABLE}}
    await nft.apply([{"add": ref}, {"delete": ref}])


async def rejected() -> Rejected | None:
    """The drop counter of VXLAN from strangers, or None when the filter is not installed."""
    return await _counter(COUNTER)


async def from_containers() -> Rejected | None:
    """The drop counter of VXLAN from containers, or None when the filter is not installed."""
    return await _counter(FROM_CONTAINERS)


# --------------------------------------------------------------------------


async def _counter(name: str) -> Rejected | None:
    objects = await nft.listing(["counter", FAMILY, TABLE, name])
    for obj in objects or []:
        if "counter" in obj:
            return Rejected(obj["counter"]["packets"], obj["counter"]["bytes"])
    return None


async def _read() -> dict[str, set[str]] | None:
    """The sets' elements as installed, or None if the table is absent or not as built."""
    objects = await nft.listing(["table", FAMILY, TABLE])
    if objects is None:
        return None
    sets = {o["set"]["name"]: o["set"] for o in objects if "set" in o}
    chains = [o["chain"] for o in objects if "chain" in o]
    comments = tuple(o["rule"].get("comment", "") for o in objects if "rule" in o)
    counters = sorted(o["counter"]["name"] for o in objects if "counter" in o)
    intact = (
        set(sets) == set(SETS)
        and all(sets[name]["type"] == kind for name, kind in SETS.items())
        and [(c["name"], c.get("hook"), c.get("policy")) for c in chains]
        == [(name, hook, "accept") for name, hook in CHAINS]
        and comments == RULE_COMMENTS
        and counters == sorted((COUNTER, FROM_CONTAINERS))
    )
    if not intact:
        return None
    return {name: {_element(name, e) for e in sets[name].get("elem", [])} for name in SETS}


def _element(set_name: str, elem: Any) -> str:
    value = elem if isinstance(elem, str) else elem["elem"]["val"]
    if set_name == CONTAINER_BRIDGES:
        return value
    # nft lists plain addresses as strings; normalised so "::1" compares equal.
    return str(ipaddress.ip_address(value))


def _build(want: dict[str, set[str]]) -> list[dict]:
    """The whole table from scratch, sets already filled: never open in between."""
    table = {"family": FAMILY, "table": TABLE}
    ref = {"table": {"family": FAMILY, "name": TABLE}}
    objects: list[dict] = [{"add": ref}, {"delete": ref}, {"add": ref}]
    for counter in (COUNTER, FROM_CONTAINERS):
        objects.append({"add": {"counter": {**table, "name": counter}}})
    for name, kind in SETS.items():
        objects.append({"add": {"set": {**table, "name": name, "type": kind}}})
        if want[name]:
            objects.append({"add": {"element": _set_elements(name, want[name])}})
    for name, hook in CHAINS:
        objects.append({"add": {"chain": {**table, "name": name, "type": "filter", "hook": hook,
                                          "prio": PRIORITY, "policy": "accept"}}})
    vxlan = {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                       "right": VXLAN_PORT}}
    from_containers = [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": f"@{CONTAINER_BRIDGES}"}},
        vxlan, {"counter": FROM_CONTAINERS}, {"drop": None}]
    rules = [("input", _CONTAINER_COMMENT.format("input"), from_containers)]
    for name, (_, proto) in VTEP_SETS.items():
        rules.append(("input", _VTEP_COMMENT.format(proto), [
            {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}},
                       "right": "ipv4" if proto == "ip" else "ipv6"}},
            vxlan,
            {"match": {"op": "!=", "left": {"payload": {"protocol": proto, "field": "saddr"}},
                       "right": f"@{name}"}},
            {"counter": COUNTER},
            {"drop": None},
        ]))
    rules.append(("forward", _CONTAINER_COMMENT.format("forward"), from_containers))
    for chain, comment, expr in rules:
        objects.append({"add": {"rule": {**table, "chain": chain, "comment": comment, "expr": expr}}})
    return objects


def _set_elements(name: str, elements: set[str]) -> dict:
    return {"family": FAMILY, "table": TABLE, "name": name, "elem": sorted(elements)}
