"""The host's whole nftables ruleset for vxmesh: NAT, isolation, published ports.

Declarative and level-triggered: the caller passes everything it wants
(every bridge, every published port) and apply() rebuilds one table (family
ip) in one `nft -j -f -` transaction: add the table (so the delete is valid
when it is absent), delete it, create it afresh. A removed container's
ports, or anything that drifted into the table, are gone after the next
apply, and nothing in between is ever half-applied.

The rules follow Docker's with userland-proxy=false:
  - egress from a bridge's subnet out of any other interface is masqueraded;
  - bridges may talk out, but only replies and published (DNAT'ed)
    connections come in; two different vxmesh bridges never talk
    (DOCKER-ISOLATION), and a bridge with icc=False (the gwbridge) does not
    route between its own containers either;
  - a published port is DNAT'ed when addressed to any of the host's own
    addresses, from outside (prerouting) and from the host itself (output),
    including 127.0.0.1, which needs route_localnet and a masquerade so
    the container can answer.

Beyond Docker, containers are kept off the control plane: the guarded TCP
ports (every agent's API, the controllers', etcd's client and peer ports,
see agent/guards.py) are dropped from any bridge, on the host itself (any of
its addresses) and at the guarded addresses elsewhere, looked up in one set
whatever the cluster's size; the rules carry the comment GUARD_COMMENT.
VXLAN from containers is the VTEP filter's (agent/kernel/vtep_filter.py),
whose counters outlive this table's rebuilds.

Every chain's policy is accept: the table only ever drops what it names,
so other software's traffic on the host is not its concern.
"""
from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from agent.kernel import families, nft
from agent.kernel.bridge import check_bridge_addressing
from proto import validate
from proto.addresses import IPAddress, IPNetwork

ROUTE_LOCALNET = "/proc/sys/net/ipv4/conf/all/route_localnet"
# One table for the families containers' networks use ("ip" while they are IPv4).
FAMILY = families.nft_table_family(families.overlay())
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Every rule keeping containers off the control plane carries this comment.
GUARD_COMMENT = "control-plane guard"
# (name, type, hook, priority) of every chain, in the order they are made.
CHAINS = (
    ("prerouting", "nat", "prerouting", -100),  # dstnat
    ("output", "nat", "output", -100),  # dstnat, for the host's own connections
    ("postrouting", "nat", "postrouting", 100),  # srcnat
    ("forward", "filter", "forward", 0),
    ("input", "filter", "input", 0),
)


@dataclass(frozen=True)
class BridgeRules:
    name: str  # bridge interface
    subnet: str
    gateway: str
    icc: bool  # may its containers talk to each other (False: gwbridge)


@dataclass(frozen=True)
class PortRule:
    """A published port: -p HOST_PORT:CONTAINER_PORT/PROTO."""

    protocol: str  # "tcp" | "udp"
    host_port: int
    target_ip: str  # the container's address on `bridge`
    target_port: int
    bridge: str  # the bridge target_ip lives on


@dataclass(frozen=True)
class MeshRule:
    """A port of the routing mesh: PUBLISHED on any of this host's addresses leads,
    per connection, to one of a service's tasks (TARGET), through this host's leg
    into the service's network; the source becomes the leg's address, so the
    task's reply comes back the same way."""

    protocol: str  # "tcp" | "udp"
    published: int
    backends: tuple[str, ...]  # the tasks' addresses on the leg's network
    target_port: int
    leg: str  # this host's interface into that network


@dataclass(frozen=True)
class Guard:
    """A control-plane TCP port no container may open a connection to."""

    port: int
    address: str = ""  # "": on any of this host's own addresses; else that (remote) address


@dataclass(frozen=True)
class HostRules:
    bridges: tuple[BridgeRules, ...]
    ports: tuple[PortRule, ...]
    table: str = "vxmesh"
    guards: tuple[Guard, ...] = ()
    mesh: tuple[MeshRule, ...] = ()


def ruleset(rules: HostRules) -> dict[str, Any]:
    """The nft JSON transaction that rebuilds the table; ValueError on bad input."""
    _validate(rules)
    t = _Table(rules.table)
    _published_ports(t, rules.ports)
    _mesh(t, rules.mesh)
    _masquerade(t, rules.bridges)
    _guard(t, rules.bridges, rules.guards)
    _forward(t, rules.bridges)
    # route_localnet (see apply) also lets the wire address 127.0.0.0/8;
    # only replies to the host's own connections may arrive that way
    # (Kubernetes' guard for CVE-2020-8558).
    t.rule("input", _iif("!=", "lo"), _match("==", _LOOPBACK_DADDR, _prefix(_LOOPBACK)),
           _ct("state", ["new", "invalid", "untracked"]), {"drop": None})
    return t.transaction()


def _published_ports(t: _Table, ports: tuple[PortRule, ...]) -> None:
    for port in ports:
        for chain in ("prerouting", "output"):
            # Any address of this host, as Docker's addrtype LOCAL match;
            # a container's own address is not one.
            t.rule(chain, _match("==", {"fib": {"result": "type", "flags": ["daddr"]}}, "local"),
                   _match("==", {"payload": {"protocol": port.protocol, "field": "dport"}},
                          port.host_port),
                   {"dnat": {"addr": port.target_ip, "port": port.target_port}})


def _mesh(t: _Table, mesh: tuple[MeshRule, ...]) -> None:
    for rule in mesh:
        if not rule.backends:
            continue      # nothing answers the port then: the host refuses it itself
        choice = {"map": {"key": {"numgen": {"mode": "random", "mod": len(rule.backends), "offset": 0}},
                          "data": {"set": [[i, ip] for i, ip in enumerate(rule.backends)]}}}
        for chain in ("prerouting", "output"):
            t.rule(chain, _match("==", {"fib": {"result": "type", "flags": ["daddr"]}}, "local"),
                   _match("==", {"payload": {"protocol": rule.protocol, "field": "dport"}}, rule.published),
                   {"dnat": {"addr": choice, "port": rule.target_port}}, comment="routing mesh")
    for leg in sorted({rule.leg for rule in mesh}):
        t.rule("postrouting", _oif("==", leg), {"masquerade": None}, comment="routing mesh")


def _masquerade(t: _Table, bridges: tuple[BridgeRules, ...]) -> None:
    for b in bridges:
        subnet, into = _match("==", _addr("saddr", b.subnet), _prefix(b.subnet)), _oif("==", b.name)
        # Hairpin: a container reached a published port on its own bridge
        # through a host address; unmasqueraded, the target would answer
        # from an address the client never spoke to. Bridged frames (with
        # br_netfilter) have no iifname in postrouting, hence the saddr.
        t.rule("postrouting", subnet, into, _ct("status", "dnat"), {"masquerade": None})
        # 127.0.0.1:HOST_PORT from the host: a container cannot answer 127.0.0.1.
        t.rule("postrouting", _match("==", _LOOPBACK_SADDR, _prefix(_LOOPBACK)), into, {"masquerade": None})
        t.rule("postrouting", subnet, _oif("!=", b.name), {"masquerade": None})


def _guard(t: _Table, bridges: tuple[BridgeRules, ...], guards: tuple[Guard, ...]) -> None:
    """Before any accept in forward: containers never reach the control plane."""
    if not bridges:
        return
    from_bridges = _iif("==", _names([b.name for b in bridges]))
    tcp_dport = {"payload": {"protocol": "tcp", "field": "dport"}}
    # Remote guards' ports are closed on the host too: a controller may run
    # here, reachable at one of its own addresses besides the configured one.
    local = sorted({g.port for g in guards})
    if local:
        t.rule("input", from_bridges, _match("==", tcp_dport, _values(local)), {"drop": None},
               comment=GUARD_COMMENT)
    # One lookup in a set of (address, port) per address family, however many
    # hosts and controllers the cluster has.
    remote: dict[str, list[tuple[str, int]]] = {}
    for address, port in sorted({(g.address, g.port) for g in guards if g.address}):
        remote.setdefault(families.family_of(address).nft, []).append((address, port))
    for protocol, targets in remote.items():
        daddr = {"payload": {"protocol": protocol, "field": "daddr"}}
        t.rule("forward", from_bridges,
               _match("==", {"concat": [daddr, tcp_dport]},
                      {"set": [{"concat": [address, port]} for address, port in targets]}),
               {"drop": None}, comment=GUARD_COMMENT)


def _forward(t: _Table, bridges: tuple[BridgeRules, ...]) -> None:
    # First, for every bridge: nothing between two different bridges.
    for b in bridges:
        others = [o.name for o in bridges if o.name != b.name]
        if others:
            t.rule("forward", _iif("==", b.name), _oif("==", _names(others)), {"drop": None})
    for b in bridges:
        # Routed within the bridge, or bridged when br_netfilter is on.
        t.rule("forward", _iif("==", b.name), _oif("==", b.name),
               {"accept": None} if b.icc else {"drop": None})
        # Every other vxmesh interface was handled above: this is egress.
        t.rule("forward", _iif("==", b.name), {"accept": None})
        into = _oif("==", b.name)
        t.rule("forward", into, _ct("state", ["established", "related"]), {"accept": None})
        t.rule("forward", into, _ct("status", "dnat"), {"accept": None})
        t.rule("forward", into, {"drop": None})


async def apply(rules: HostRules) -> None:
    """Make the table exactly `rules`; on any error the old table stays."""
    await nft.apply(ruleset(rules)["nftables"])
    if rules.ports or rules.mesh:
        # Needed for 127.0.0.1:HOST_PORT: a packet with a loopback source
        # may then be routed out of a bridge. Per namespace, like
        # ip_forward; left on afterwards, as the input guard stays too.
        await asyncio.to_thread(_write_sysctl, ROUTE_LOCALNET, "1")


async def read_table(table: str = "vxmesh") -> list[dict]:
    """The table's chains and rules as nft's JSON objects ([] if absent)."""
    _check_table_name(table)
    objects = await nft.listing(["table", FAMILY, table])
    return [obj for obj in objects or [] if "chain" in obj or "rule" in obj]


async def remove(table: str = "vxmesh") -> None:
    """Delete the table; absent is fine. route_localnet is left as it is."""
    _check_table_name(table)
    ref = {"table": {"family": FAMILY, "name": table}}
    # "add" first makes the delete valid when the table does not exist.
    await nft.apply([{"add": ref}, {"delete": ref}])


# --------------------------------------------------------------------------
# building the transaction


class _Table:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ref = {"table": {"family": FAMILY, "name": name}}
        self.objects: list[dict] = [{"add": self.ref}, {"delete": self.ref}, {"add": self.ref}]
        for chain, kind, hook, prio in CHAINS:
            self.objects.append({"add": {"chain": {
                "family": FAMILY, "table": name, "name": chain, "type": kind,
                "hook": hook, "prio": prio, "policy": "accept",
            }}})

    def rule(self, chain: str, *expr: dict, comment: str = "") -> None:
        rule = {"family": FAMILY, "table": self.name, "chain": chain, "expr": list(expr)}
        if comment:
            rule["comment"] = comment
        self.objects.append({"add": {"rule": rule}})

    def transaction(self) -> dict[str, Any]:
        return {"nftables": self.objects}


def _match(op: str, left: dict, right: Any) -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _iif(op: str, name: Any) -> dict:
    return _match(op, {"meta": {"key": "iifname"}}, name)


def _oif(op: str, name: Any) -> dict:
    return _match(op, {"meta": {"key": "oifname"}}, name)


def _ct(key: str, value: Any) -> dict:
    # "in" is nft's flag test ("any of these bits set"); "==" would compare
    # the whole bitmask and never match a real connection's status.
    return _match("in", {"ct": {"key": key}}, value)


def _prefix(cidr: str | IPNetwork) -> dict:
    network = ipaddress.ip_network(cidr)
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


def _addr(field: str, of: str) -> dict:
    """The packet's source or destination address, in the family of the address or subnet `of`."""
    value: IPAddress | IPNetwork = ipaddress.ip_network(of) if "/" in of else ipaddress.ip_address(of)
    return {"payload": {"protocol": families.family_of(value).nft, "field": field}}


def _names(names: list[str]) -> Any:
    return names[0] if len(names) == 1 else {"set": names}


def _values(values: list[int]) -> Any:
    return values[0] if len(values) == 1 else {"set": values}


# route_localnet, and so what guards it, is IPv4's.
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_SADDR = {"payload": {"protocol": families.IPV4.nft, "field": "saddr"}}
_LOOPBACK_DADDR = {"payload": {"protocol": families.IPV4.nft, "field": "daddr"}}


# --------------------------------------------------------------------------
# validation


def _validate(rules: HostRules) -> None:
    _check_table_name(rules.table)
    subnets: dict[str, IPNetwork] = {}
    gateways: dict[str, IPAddress] = {}
    for i, b in enumerate(rules.bridges):
        label = f"bridges[{i}]."
        network = check_bridge_addressing(b.name, b.subnet, b.gateway, label)
        if not isinstance(b.icc, bool):
            raise ValueError(f"{label}icc {b.icc!r} is not a bool")
        if b.name in subnets:
            raise ValueError(f"{label}name {b.name!r} appears twice")
        for other, other_net in subnets.items():
            if network.overlaps(other_net):
                raise ValueError(
                    f"{label}subnet {b.subnet} overlaps {other_net} of bridge {other}"
                )
        subnets[b.name] = network
        gateways[b.name] = ipaddress.ip_address(b.gateway)

    for i, g in enumerate(rules.guards):
        label = f"guards[{i}]."
        validate.port(g.port, f"{label}port")
        if g.address:
            families.address(g.address, f"{label}address")

    for i, m in enumerate(rules.mesh):
        label = f"mesh[{i}]."
        validate.protocol(m.protocol)
        validate.port(m.published, f"{label}published")
        validate.port(m.target_port, f"{label}target_port")
        validate.ifname(m.leg)
        for backend in m.backends:
            families.address(backend, f"{label}backends")

    published: dict[tuple[str, int], int] = {}
    for i, p in enumerate(rules.ports):
        label = f"ports[{i}]."
        try:
            validate.protocol(p.protocol)
        except ValueError as e:
            raise ValueError(f"{label}protocol: {e}") from None
        validate.port(p.host_port, f"{label}host_port")
        validate.port(p.target_port, f"{label}target_port")
        if p.bridge not in subnets:
            raise ValueError(f"{label}bridge {p.bridge!r} is not one of the bridges")
        target = families.address(p.target_ip, f"{label}target_ip")
        network = subnets[p.bridge]
        if target not in network or target == gateways[p.bridge]:
            raise ValueError(
                f"{label}target_ip {p.target_ip} is not a container address "
                f"in {network} of bridge {p.bridge}"
            )
        key = (p.protocol, p.host_port)
        if key in published:
            raise ValueError(
                f"{label}host_port {p.host_port}/{p.protocol} is already "
                f"published by ports[{published[key]}]"
            )
        published[key] = i


def _check_table_name(table: str) -> None:
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise ValueError(f"table {table!r} is not a valid nftables table name")


def _write_sysctl(path: str, value: str) -> None:
    with open(path, "r+") as f:
        if f.read().strip() != value:
            f.seek(0)
            f.write(value + "\n")
