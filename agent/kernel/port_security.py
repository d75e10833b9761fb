"""Port security: a container's bridge port carries only what the container is.

A container that may change its MAC and add addresses (any container given
NET_ADMIN) could otherwise take over a neighbour: send frames from the
neighbour's MAC, so the bridge learns that MAC on its port and forwards the
neighbour's traffic to it, answer ARP for the neighbour's address, and send
packets with any source address, which the other hosts' tables accept. As
Neutron's and Calico's port security, every container port here accepts
only frames from the container's assigned MAC that are either ARP whose
sender is that MAC and one of the container's addresses, or IPv4 from one
of those addresses. Everything else is dropped before the bridge learns
anything from it (the bridge's prerouting hook runs before learning):
frames from another MAC and ARP or IPv4 with another sender are counted in
the port's named counter `spoofed_<port>` (so are ARP probes and DHCP
from 0.0.0.0: a container's address is given, never negotiated); other
protocols (IPv6, VLAN tags, ...) are dropped uncounted. Containers have no IPv6 address yet
(proto.addresses.OVERLAY_FAMILIES), so IPv6, which the kernel would send
from a link-local address anyway, is not theirs to send: a dual-stack
overlay adds its addresses (and ND's sender checks) here.

Towards the container, a port delivers unicast only to the container's own
MAC: a frame flooded for a MAC the bridge has not learned (a silent
neighbour's) does not reach a container that claims that MAC, nor one
listening in promiscuous mode. Broadcast and multicast still reach every
port.

One table per network namespace holding container ports (family bridge:
the host's, for the gwbridge and local bridges, and each overlay network's,
for br0), its ports as given: a chain `from_<port>` per port, reached from
prerouting through the verdict map `from_ports` (one lookup, however many
ports), and a chain `to_<port>` reached from forward and output through
`to_ports`. Declarative and level-triggered like agent/kernel/vtep_filter.py:
given what the table held after the caller's last change, converge() sends
one nft transaction with the difference (a port's chains, counter and map
elements added or removed, a changed port's rules replaced), so a container
starting costs the same whatever the number of its neighbours; not given it
(the agent's periodic pass, a start), it reads the table back and, when the
table is not exactly as wanted, rebuilds it whole in one `nft -j -f -`
transaction, carrying the counters of the ports that stay over. A port's
rules exist before its veth does (the agent writes them before it builds
the interface), so no frame of a new container ever crosses an unguarded
port.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.kernel import families, nft
from proto import validate

TABLE = "vxmesh_ports"
FAMILY = "bridge"
PRIORITY = -200  # the bridge family's filter priority
# (base chain, its hook, the meta key that picks a port, the verdict map it looks up)
BASE_CHAINS = (
    ("prerouting", "prerouting", "iifname", "from_ports"),   # what the container sends
    ("forward", "forward", "oifname", "to_ports"),           # what other ports send it
    ("output", "output", "oifname", "to_ports"),             # what the bridge itself sends it
)
# verdict map -> the prefix of the port chains it jumps to
MAPS = {"from_ports": "from_", "to_ports": "to_"}
COUNTER_PREFIX = "spoofed_"
_MULTICAST_BIT = "01:00:00:00:00:00"


@dataclass(frozen=True)
class Port:
    """A container's interface seen from its bridge: the bridge-side veth end and
    what the container may send through it."""
    ifname: str                 # the bridge-side end of the container's veth
    mac: str                    # the container's assigned MAC on it
    addresses: tuple[str, ...]  # the container's addresses on it

    def __post_init__(self) -> None:
        validate.ifname(self.ifname)
        if not _is_unicast_mac(self.mac):
            raise ValueError(f"port {self.ifname}: {self.mac!r} is not a unicast MAC address")
        if not self.addresses:
            raise ValueError(f"port {self.ifname}: no address")
        for address in self.addresses:
            families.address(address, f"port {self.ifname} address")

    @property
    def counter(self) -> str:
        return f"{COUNTER_PREFIX}{self.ifname}"


@dataclass(frozen=True)
class Dropped:
    packets: int
    bytes: int


def ruleset(ports: Iterable[Port], counters: dict[str, Dropped] | None = None) -> list[dict[str, Any]]:
    """The transaction that rebuilds the table for `ports`; `counters`: the values a
    port's counter starts from (by counter name), carried over a rebuild."""
    ports = _checked(ports)
    counters = counters or {}
    ref = {"table": {"family": FAMILY, "name": TABLE}}
    objects: list[dict] = [{"add": ref}, {"delete": ref}, {"add": ref}]
    # The ports' chains before the maps that jump to them.
    for port in ports:
        objects += _add_port_chains(port, counters.get(port.counter, Dropped(0, 0)))
    for name, prefix in MAPS.items():
        verdict_map = {**_TABLE, "name": name, "type": "ifname", "map": "verdict"}
        if ports:
            verdict_map["elem"] = [_element(p, prefix) for p in ports]
        objects.append({"add": {"map": verdict_map}})
    for chain, hook, _, _ in BASE_CHAINS:
        objects.append({"add": {"chain": {**_TABLE, "name": chain, "type": "filter", "hook": hook,
                                          "prio": PRIORITY, "policy": "accept"}}})
    objects += [_rule(*rule) for rule in _dispatch_rules()]
    for port in ports:
        objects += [_rule(*rule) for rule in _port_rules(port)]
    return objects


def changes(applied: Iterable[Port], ports: Iterable[Port]) -> list[dict[str, Any]]:
    """The transaction that takes a table guarding `applied` to one guarding `ports`:
    only the ports that came, went or changed are touched, every other counter kept."""
    old = {p.ifname: p for p in _checked(applied)}
    new = {p.ifname: p for p in _checked(ports)}
    objects: list[dict] = []
    for name in sorted(old.keys() - new.keys()):
        port = old[name]
        for map_name, prefix in MAPS.items():
            objects.append({"delete": {"element": {**_TABLE, "name": map_name, "elem": [name]}}})
            chain = {"chain": {**_TABLE, "name": f"{prefix}{name}"}}
            objects += [{"flush": chain}, {"delete": chain}]
        objects.append({"delete": {"counter": {**_TABLE, "name": port.counter}}})
    for name in sorted(new.keys() - old.keys()):
        objects += _add_port_chains(new[name], Dropped(0, 0))
        objects += [_rule(*rule) for rule in _port_rules(new[name])]
        for map_name, prefix in MAPS.items():
            objects.append({"add": {"element": {**_TABLE, "name": map_name, "elem": [_element(new[name], prefix)]}}})
    for name in sorted(new.keys() & old.keys()):
        if new[name] != old[name]:   # another MAC or address: its rules again, its counter kept
            for prefix in MAPS.values():
                objects.append({"flush": {"chain": {**_TABLE, "name": f"{prefix}{name}"}}})
            objects += [_rule(*rule) for rule in _port_rules(new[name])]
    return objects


async def converge(netns: str | None, ports: Iterable[Port], applied: Iterable[Port] | None = None) -> None:
    """Make the table in `netns` (None: this namespace) guard exactly `ports`.
    `applied`: what the caller's last converge left there, if it knows; None
    reads the table back first."""
    ports = _checked(ports)
    if applied is not None:
        objects = changes(applied, ports)
        if objects:
            await nft.apply(objects, netns)
        return
    listed = await nft.listing(["table", FAMILY, TABLE], netns)
    if listed is not None and _shape(listed) == _shape(ruleset(ports)):
        return
    await nft.apply(ruleset(ports, _counters(listed or [])), netns)


async def remove(netns: str | None) -> None:
    """Port security switched off: no table in `netns`; absent is fine."""
    ref = {"table": {"family": FAMILY, "name": TABLE}}
    await nft.apply([{"add": ref}, {"delete": ref}], netns)


async def dropped(netns: str | None, ifname: str) -> Dropped | None:
    """What the port's counter holds, or None when the port is not guarded there."""
    listed = await nft.listing(["table", FAMILY, TABLE], netns)
    return _counters(listed or []).get(f"{COUNTER_PREFIX}{validate.ifname(ifname)}")


# --------------------------------------------------------------------------


def _checked(ports: Iterable[Port]) -> list[Port]:
    ports = sorted(ports, key=lambda p: p.ifname)
    seen: set[str] = set()
    for port in ports:
        if port.ifname in seen:
            raise ValueError(f"port {port.ifname} appears twice")
        seen.add(port.ifname)
    return ports


_TABLE = {"family": FAMILY, "table": TABLE}


def _rule(chain: str, comment: str, expr: list[dict]) -> dict:
    return {"add": {"rule": {**_TABLE, "chain": chain, "comment": comment, "expr": expr}}}


def _element(port: Port, prefix: str) -> list:
    return [port.ifname, {"jump": {"target": f"{prefix}{port.ifname}"}}]


def _add_port_chains(port: Port, counter: Dropped) -> list[dict]:
    """A port's counter (starting from `counter`) and its two chains, empty."""
    objects: list[dict] = [{"add": {"counter": {**_TABLE, "name": port.counter,
                                                "packets": counter.packets, "bytes": counter.bytes}}}]
    for prefix in MAPS.values():
        objects.append({"add": {"chain": {**_TABLE, "name": f"{prefix}{port.ifname}"}}})
    return objects


def _dispatch_rules() -> list[tuple[str, str, list[dict]]]:
    """Each base chain looks the port up in its verdict map: one lookup per frame."""
    return [(chain, f"{key} to {map_name}", [{"vmap": {"key": {"meta": {"key": key}}, "data": f"@{map_name}"}}])
            for chain, _, key, map_name in BASE_CHAINS]


def _port_rules(port: Port) -> list[tuple[str, str, list[dict]]]:
    """(chain, comment, expressions) of a port's rules, in order."""
    mac = port.mac.lower()
    addresses = _values(port.addresses)
    listed = ", ".join(port.addresses)
    from_ = f"from_{port.ifname}"
    return [
        (from_, f"{port.ifname}: only from {mac}", [
            _match("!=", _payload("ether", "saddr"), mac), {"counter": port.counter}, {"drop": None}]),
        (from_, f"{port.ifname}: arp from {mac} {listed}", [
            _match("==", _payload("ether", "type"), "arp"),
            _match("==", _payload("arp", "htype"), 1),
            _match("==", _payload("arp", "ptype"), "ip"),
            _match("==", _payload("arp", "hlen"), 6),
            _match("==", _payload("arp", "plen"), 4),
            _match("==", _payload("arp", "saddr ether"), mac),
            _match("==", _payload("arp", "saddr ip"), addresses),
            {"accept": None}]),
        (from_, f"{port.ifname}: ipv4 from {listed}", [
            _match("==", _payload("ether", "type"), "ip"),
            _match("==", _payload("ip", "saddr"), addresses),
            {"accept": None}]),
        (from_, f"{port.ifname}: arp or ipv4 from another address", [
            _match("==", _payload("ether", "type"), {"set": ["arp", "ip"]}),
            {"counter": port.counter}, {"drop": None}]),
        (from_, f"{port.ifname}: nothing else", [{"drop": None}]),
        (f"to_{port.ifname}", f"{port.ifname}: unicast only to {mac}", [
            _match("==", {"&": [_payload("ether", "daddr"), _MULTICAST_BIT]}, "00:00:00:00:00:00"),
            _match("!=", _payload("ether", "daddr"), mac),
            {"drop": None}]),
    ]


def _shape(objects: list[dict]) -> tuple:
    """What decides whether a table is the one wanted, read alike from a transaction
    and from nft's listing: the chains, each chain's rules by their comments (which
    name the addresses they allow: nft reads expressions back in its own normal
    form), where each verdict map sends each port, and the counters. The order of
    the chains is not part of it (changes() adds a port's chains last)."""
    chains, rules, maps, counters = [], {}, {}, []
    for obj in (o.get("add", o) for o in objects):
        if "chain" in obj:
            c = obj["chain"]
            chains.append((c["name"], c.get("hook"), c.get("prio"), c.get("policy")))
        elif "rule" in obj:
            rules.setdefault(obj["rule"]["chain"], []).append(obj["rule"].get("comment", ""))
        elif "map" in obj:
            m = obj["map"]
            maps[m["name"]] = sorted((key, verdict["jump"]["target"]) for key, verdict in m.get("elem", []))
        elif "counter" in obj:
            counters.append(obj["counter"]["name"])
    return sorted(chains), rules, maps, sorted(counters)


def _counters(listed: list[dict]) -> dict[str, Dropped]:
    return {o["counter"]["name"]: Dropped(o["counter"]["packets"], o["counter"]["bytes"])
            for o in listed if "counter" in o and o["counter"]["name"].startswith(COUNTER_PREFIX)}


def _payload(protocol: str, field: str) -> dict:
    return {"payload": {"protocol": protocol, "field": field}}


def _match(op: str, left: dict, right: Any) -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _values(addresses: tuple[str, ...]) -> Any:
    normal = sorted({str(ipaddress.ip_address(a)) for a in addresses})
    return normal[0] if len(normal) == 1 else {"set": normal}


def _is_unicast_mac(mac: object) -> bool:
    parts = mac.split(":") if isinstance(mac, str) else []
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        return False
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        return False
    return not octets[0] & 1
