"""A container's load balancer: its services' VIPs DNATed to their tasks, in its own namespace.

One nftables table, `ip vxmesh_lb`, in the network namespace of each
container on a network that has services with VIPs. Its nat output chain
sends a new connection to VIP (any port, the port unchanged, as Docker's
VIPs do) to one backend picked at random (`numgen random mod N`), once per
connection: the choice lives in the connection's conntrack entry, so the
table can be replaced, backends come and go, and a connection in flight
keeps its backend. A VIP with no backend is refused at once (ICMP port
unreachable, a TCP client sees "connection refused") instead of timing out.

The table is rewritten whole in one transaction (nft applies all or none).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.kernel import nft

TABLE = "vxmesh_lb"
FAMILY = "ip"


@dataclass(frozen=True)
class Balanced:
    """One VIP and the addresses that share its connections."""
    vip: str
    backends: tuple[str, ...]
    service: str = ""         # a comment on its rule, for people reading `nft list`


def ruleset(vips: Iterable[Balanced]) -> list[dict[str, Any]]:
    """The transaction that makes the table hold exactly `vips`."""
    ref = {"table": {"family": FAMILY, "name": TABLE}}
    objects: list[dict[str, Any]] = [{"add": ref}, {"delete": ref}, {"add": ref}]
    for name, kind, prio in (("vips", "nat", -100), ("empty", "filter", 0)):
        objects.append({"add": {"chain": {"family": FAMILY, "table": TABLE, "name": name, "type": kind,
                                          "hook": "output", "prio": prio, "policy": "accept"}}})
    empty = []
    for entry in sorted(vips, key=lambda v: v.vip):
        if not entry.backends:
            empty.append(entry.vip)
            continue
        choice = {"map": {"key": {"numgen": {"mode": "random", "mod": len(entry.backends), "offset": 0}},
                          "data": {"set": [[i, ip] for i, ip in enumerate(entry.backends)]}}}
        objects.append(_rule("vips", [_daddr(entry.vip), {"dnat": {"addr": choice}}], entry.service))
    if empty:
        # After the nat chain: only what no rule DNATed still goes to a VIP.
        objects.append(_rule("empty", [_daddr({"set": empty}), {"reject": {"type": "icmp",
                                                                          "expr": "port-unreachable"}}]))
    return objects


async def converge(netns: str, vips: Iterable[Balanced]) -> None:
    """Make the table in `netns` hold exactly `vips`; none: no table at all."""
    vips = list(vips)
    if vips:
        await nft.apply(ruleset(vips), netns)
    else:
        ref = {"table": {"family": FAMILY, "name": TABLE}}
        await nft.apply([{"add": ref}, {"delete": ref}], netns)


async def read(netns: str) -> list[Balanced]:
    """What the table in `netns` holds (tests and benchmarks read it back)."""
    objects = await nft.listing(["table", FAMILY, TABLE], netns)
    found = []
    for obj in objects or []:
        rule = obj.get("rule")
        if rule is None or rule["chain"] != "vips":
            continue
        vip = rule["expr"][0]["match"]["right"]
        data = rule["expr"][1]["dnat"]["addr"]["map"]["data"]["set"]
        found.append(Balanced(vip, tuple(ip for _, ip in sorted(data)), rule.get("comment", "")))
    return found


def _daddr(right: Any) -> dict:
    return {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": right}}


def _rule(chain: str, expr: list[dict], comment: str = "") -> dict:
    rule: dict[str, Any] = {"family": FAMILY, "table": TABLE, "chain": chain, "expr": expr}
    if comment:
        rule["comment"] = comment
    return {"add": {"rule": rule}}
