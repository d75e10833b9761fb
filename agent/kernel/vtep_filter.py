"""Who may send this host VXLAN: only the VTEPs of the cluster's live hosts.

A VXLAN device accepts any UDP datagram to port 4789 whose VNI it serves,
from anyone who can reach the underlay: a rogue machine on the fabric could
inject frames straight onto an overlay's bridge, addressed to a container's
MAC. This table drops UDP 4789 unless the source is a live host's VTEP, and
counts every drop in the named counter `vxlan_rejected`.

It is a table of its own (family inet, so IPv4 and IPv6 underlays are
covered by one chain) rather than part of the `vxmesh` table, because that
one is rebuilt whole on every change, which would reset the counter and
briefly reopen the port. Here the chain and its rules are built once; as
hosts join and leave, only the elements of the address sets are added and
deleted, in one nft transaction. converge() is level-triggered: it reads the
table back and fixes whatever differs, rebuilding it only when its
structure drifted.

The source address is all the filter can check: it stops strangers, not a
host on the fabric that forges a live VTEP's address. docs/encryption.md
describes what would (IPsec ESP between the VTEPs).
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from agent.kernel.firewall import NftablesError, run_nft
from agent.kernel.overlay import VXLAN_PORT
from proto.addresses import parse_ip

TABLE = "vxmesh_vtep"
FAMILY = "inet"
CHAIN = "input"
COUNTER = "vxlan_rejected"
# set name -> (nft address type, the payload protocol its rule matches)
SETS = {"vteps4": ("ipv4_addr", "ip"), "vteps6": ("ipv6_addr", "ip6")}
# Each rule carries a comment naming its job: the structure check compares
# these, since nft reads expressions back in its own normal form.
RULE_COMMENTS = tuple(f"vxlan only from live vteps ({proto})" for _, proto in SETS.values())


@dataclass(frozen=True)
class Rejected:
    packets: int
    bytes: int


def split_by_family(vteps: set[str]) -> dict[str, set[str]]:
    """The desired elements of each set; ValueError names a bad address."""
    elements: dict[str, set[str]] = {name: set() for name in SETS}
    for vtep in vteps:
        address = parse_ip(vtep, "VTEP")
        elements["vteps4" if address.version == 4 else "vteps6"].add(str(address))
    return elements


async def converge(vteps: set[str]) -> None:
    """Accept VXLAN from exactly `vteps` (the live hosts), drop and count the rest."""
    want = split_by_family(vteps)
    have = await _read()
    if have is None:
        await _run(_build(want))
        return
    changes = []
    for name, elements in want.items():
        extra, missing = have[name] - elements, elements - have[name]
        if extra:
            changes.append({"delete": {"element": _set_elements(name, extra)}})
        if missing:
            changes.append({"add": {"element": _set_elements(name, missing)}})
    if changes:
        await _run(changes)


async def remove() -> None:
    """The filter switched off: no table, VXLAN from anywhere is accepted."""
    ref = {"table": {"family": FAMILY, "name": TABLE}}
    await _run([{"add": ref}, {"delete": ref}])


async def rejected() -> Rejected | None:
    """The drop counter, or None when the filter is not installed."""
    try:
        out = await run_nft(["-j", "list", "counter", FAMILY, TABLE, COUNTER])
    except NftablesError as e:
        if "No such file or directory" in str(e):
            return None
        raise
    for obj in json.loads(out)["nftables"]:
        if "counter" in obj:
            return Rejected(obj["counter"]["packets"], obj["counter"]["bytes"])
    return None


# --------------------------------------------------------------------------


async def _read() -> dict[str, set[str]] | None:
    """The sets' elements as installed, or None if the table is absent or not as built."""
    try:
        out = await run_nft(["-j", "list", "table", FAMILY, TABLE])
    except NftablesError as e:
        if "No such file or directory" in str(e):
            return None
        raise
    objects = json.loads(out)["nftables"]
    sets = {o["set"]["name"]: o["set"] for o in objects if "set" in o}
    chains = [o["chain"] for o in objects if "chain" in o]
    comments = tuple(o["rule"].get("comment", "") for o in objects if "rule" in o)
    counters = [o["counter"]["name"] for o in objects if "counter" in o]
    intact = (
        set(sets) == set(SETS)
        and all(sets[name]["type"] == kind for name, (kind, _) in SETS.items())
        and [(c["name"], c.get("hook"), c.get("policy")) for c in chains] == [(CHAIN, "input", "accept")]
        and comments == RULE_COMMENTS
        and counters == [COUNTER]
    )
    if not intact:
        return None
    return {name: {_element(e) for e in sets[name].get("elem", [])} for name in SETS}


def _element(elem: Any) -> str:
    # nft lists plain addresses as strings; normalised so "::1" compares equal.
    return str(ipaddress.ip_address(elem if isinstance(elem, str) else elem["elem"]["val"]))


def _build(want: dict[str, set[str]]) -> list[dict]:
    """The whole table from scratch, sets already filled: never open in between."""
    table = {"family": FAMILY, "table": TABLE}
    ref = {"table": {"family": FAMILY, "name": TABLE}}
    objects: list[dict] = [{"add": ref}, {"delete": ref}, {"add": ref},
                           {"add": {"counter": {**table, "name": COUNTER}}}]
    for name, (kind, _) in SETS.items():
        objects.append({"add": {"set": {**table, "name": name, "type": kind}}})
        if want[name]:
            objects.append({"add": {"element": _set_elements(name, want[name])}})
    # Before the usual filter priority, so the drop is counted whatever
    # other tables on the host decide.
    objects.append({"add": {"chain": {**table, "name": CHAIN, "type": "filter", "hook": "input",
                                      "prio": -10, "policy": "accept"}}})
    for (name, (_, proto)), comment in zip(SETS.items(), RULE_COMMENTS):
        objects.append({"add": {"rule": {**table, "chain": CHAIN, "comment": comment, "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}},
                       "right": "ipv4" if proto == "ip" else "ipv6"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                       "right": VXLAN_PORT}},
            {"match": {"op": "!=", "left": {"payload": {"protocol": proto, "field": "saddr"}},
                       "right": f"@{name}"}},
            {"counter": COUNTER},
            {"drop": None},
        ]}}})
    return objects


def _set_elements(name: str, elements: set[str]) -> dict:
    return {"family": FAMILY, "table": TABLE, "name": name, "elem": sorted(elements)}


async def _run(objects: list[dict]) -> None:
    await run_nft(["-j", "-f", "-"], json.dumps({"nftables": objects}).encode())
