"""Addresses, subnets and HOST:PORT, each knowing its address family.

Every address vxmesh reads from a user, a config file or a peer goes through
here, so the family (IPv4 or IPv6) is decided once and carried by the value
(`ipaddress` objects have `.version`); nothing else parses addresses by
hand. Which families a *feature* supports is said where the feature is
checked: `OVERLAY_FAMILIES` for container subnets (the data plane programs
IPv4 neighbour entries and IPv4 NAT today), `UNDERLAY_FAMILIES` for VTEPs.
Adding IPv6 to the overlay starts by adding 6 to OVERLAY_FAMILIES; see
docs/architecture.md for the rest of that walk-through.

Pure functions, standard library only.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from proto.errors import InvalidArgument, ResourceExhausted
from proto.validate import port as check_port

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Families the container networks (subnets, gateways, container addresses) may use.
OVERLAY_FAMILIES: tuple[int, ...] = (4,)
# Families a VTEP (a host's underlay address) may use. VXLAN runs over either
# and the VTEP filter handles both; the overlay's kernel code creates IPv4 VTEPs today.
UNDERLAY_FAMILIES: tuple[int, ...] = (4,)

# Per family: the widest and narrowest subnet a network may have. IPv4: /8 is
# already 16M addresses; below /30 there is no room for a gateway and a container.
PREFIX_BOUNDS = {4: (8, 30), 6: (64, 126)}

UNIX_SCHEME = "unix://"

# Address space no container network may take, whatever else it overlaps:
# (range, what it is and why not). Docker takes any --subnet and leaves the
# consequences to the kernel, which assigns any of these to an interface;
# they are refused here instead:
# - "this network" 0/8 (RFC 1122): a source address only, the "no address
#   yet" of DHCP; many stacks drop packets from or to it as martians;
# - loopback 127/8: the kernel gives it host scope and drops it as a martian
#   on every device but lo, so a network there passes no packet;
# - link-local: never routed (RFC 3927), yet a network's gateway and NAT would
#   route it, and hosts and clouds keep per-link services there (the metadata
#   service at 169.254.169.254), which the network would hide from its
#   containers. Docker offers link-local only as extra per-container
#   addresses (--link-local-ip), not as a network's subnet;
# - multicast 224/4: group addresses, not a host's; the kernel drops packets
#   from a multicast source as martians;
# - reserved 240/4 (RFC 1112), with the limited broadcast 255.255.255.255:
#   Linux routes it, most other stacks and routers drop it.
# IPv6 keeps the same kinds of space out, for when the overlay carries it.
RESERVED_SUBNETS: dict[int, tuple[tuple[IPNetwork, str], ...]] = {
    4: ((IPv4Network("0.0.0.0/8"), '"this network" (RFC 1122), a source address only'),
        (IPv4Network("127.0.0.0/8"), "loopback"),
        (IPv4Network("169.254.0.0/16"), "link-local (RFC 3927), never routed"),
        (IPv4Network("224.0.0.0/4"), "multicast"),
        (IPv4Network("240.0.0.0/4"), "reserved (RFC 1112) and the limited broadcast")),
    6: ((IPv6Network("::/127"), "the unspecified and loopback addresses"),
        (IPv6Network("fe80::/10"), "link-local, never routed"),
        (IPv6Network("ff00::/8"), "multicast")),
}


class SubnetFull(ResourceExhausted):
    pass


def _family_names(families: Iterable[int]) -> str:
    return " or ".join(f"IPv{f}" for f in families)


def parse_ip(text: object, what: str = "address", families: Iterable[int] = (4, 6)) -> IPAddress:
    """An address of one of `families`."""
    families = tuple(families)
    try:
        address = ipaddress.ip_address(text)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}: not an {_family_names(families)} address") from None
    if address.version not in families:
        raise InvalidArgument(f"invalid {what} {text!r}: only {_family_names(families)} addresses are supported")
    return address


def parse_subnet(text: object, what: str = "subnet", families: Iterable[int] = OVERLAY_FAMILIES,
                 bounded: bool = True) -> IPNetwork:
    """A subnet in CIDR form, no host bits set, of one of `families`; `bounded`:
    its prefix length within PREFIX_BOUNDS (a network's subnet must hold a
    gateway and containers, and not be absurdly large)."""
    families = tuple(families)
    try:
        net = ipaddress.ip_network(text, strict=False)  # type: ignore[arg-type]
        given = ipaddress.ip_interface(text).ip  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what} {text!r}: {exc}") from None
    if net.version not in families:
        raise InvalidArgument(f"invalid {what} {text!r}: only {_family_names(families)} subnets are supported")
    if net.network_address != given:
        raise InvalidArgument(f"invalid {what} {text!r}: host bits are set (the network is {net})")
    if bounded:
        low, high = PREFIX_BOUNDS[net.version]
        if not low <= net.prefixlen <= high:
            raise InvalidArgument(f"invalid {what} {text!r}: the prefix length must be between /{low} and /{high}")
    return net


def reserved_clash(subnet: IPNetwork) -> str | None:
    """The range of RESERVED_SUBNETS `subnet` overlaps, and what it is; else None."""
    for reserved, why in RESERVED_SUBNETS[subnet.version]:
        if subnet.overlaps(reserved):
            return f"{reserved}, {why}"
    return None


def check_unicast(subnet: IPNetwork, what: str = "subnet") -> IPNetwork:
    """`subnet`, or InvalidArgument naming the reserved range it takes."""
    clash = reserved_clash(subnet)
    if clash is not None:
        raise InvalidArgument(f"{what} {subnet} overlaps {clash}: no network may use it")
    return subnet


def subnet_clash(subnet: IPNetwork, taken: Mapping[str, IPNetwork | str]) -> str | None:
    """`taken` maps what holds a subnet ("network 'blue'", "the underlay of host
    h1") to that subnet: one line naming the first (by name) `subnet` overlaps, or None."""
    holder = overlaps(subnet, taken)
    return None if holder is None else f"subnet {subnet} overlaps {holder} ({taken[holder]})"


def prefixlen(subnet: str) -> int:
    return ipaddress.ip_network(subnet).prefixlen


def first_host(subnet: IPNetwork | str) -> str:
    """A subnet's first usable address: the default gateway, as Docker picks it."""
    net = ipaddress.ip_network(subnet) if isinstance(subnet, str) else subnet
    return str(net.network_address + 1)


def default_gateway(subnet: IPNetwork) -> str:
    return first_host(subnet)


def check_gateway(subnet: IPNetwork, gateway: str) -> str:
    """The gateway in canonical form, or InvalidArgument saying what is wrong with it."""
    addr = parse_ip(gateway, "gateway", (subnet.version,))
    if addr not in subnet:
        raise InvalidArgument(f"invalid gateway {gateway!r}: it is outside the subnet {subnet}")
    if addr == subnet.network_address:
        raise InvalidArgument(f"invalid gateway {gateway!r}: it is the network address of {subnet}")
    if subnet.version == 4 and addr == subnet.broadcast_address:
        raise InvalidArgument(f"invalid gateway {gateway!r}: it is the broadcast address of {subnet}")
    return str(addr)


def overlaps(subnet: IPNetwork, other_subnets: Mapping[str, IPNetwork | str]) -> str | None:
    """Name of the first (by name) of `other_subnets` that overlaps `subnet`, else None."""
    for name in sorted(other_subnets):
        other = ipaddress.ip_network(other_subnets[name])
        if other.version == subnet.version and subnet.overlaps(other):
            return name
    return None


def next_free_ip(subnet: IPNetwork, gateway: str, taken: set[str], hint: str | None = None,
                 *, network: str = "", descending: bool = False) -> str:
    """The first usable address at or after `hint` (wrapping around), else from the start.

    Skips the subnet's network (and IPv4 broadcast) address, the gateway and
    everything in `taken`. A hint spreads concurrent
    allocators over the subnet so they collide less; `network` only names
    the network in the SubnetFull message. The one allocator of vxmesh: the
    controller's IPAM and the agent's gateway-bridge addresses both use it.
    `descending`: from the top down (the hosts' routing-mesh legs, which so
    stay clear of the addresses containers come and go on).
    """
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - (1 if subnet.version == 4 else 0)
    size = last - first + 1
    start = first
    if hint is not None:
        hinted = int(ipaddress.ip_address(hint))
        if first <= hinted <= last:
            start = hinted
    skip = taken | {gateway}
    make = IPv4Address if subnet.version == 4 else IPv6Address
    if descending and hint is None:
        start = last
    for offset in range(size):
        step = -offset if descending else offset
        candidate = str(make(first + (start - first + step) % size))
        if candidate not in skip:
            return candidate
    owner = f"network {network!r}" if network else "the network"
    raise SubnetFull(f"{owner} has no free address in {subnet}")


def mac_for_ip(ip: str) -> str:
    """Docker's scheme: 02:42 then the address's last four bytes (all of an IPv4
    address), so a reused address maps to the same MAC and stale neighbour
    entries elsewhere stay correct."""
    packed = ipaddress.ip_address(ip).packed[-4:]
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


@dataclass(frozen=True)
class HostPort:
    """`host:port`, `[v6]:port` or `unix:///path` (port 0, path in host)."""
    host: str
    port: int = 0
    unix: bool = False

    def __str__(self) -> str:
        if self.unix:
            return UNIX_SCHEME + self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def address(self) -> IPAddress | None:
        """The host as an address, None for a name or a unix socket."""
        if self.unix:
            return None
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_host_port(text: object, what: str = "address", unix_ok: bool = False) -> HostPort:
    """HOST:PORT ([IPV6]:PORT for IPv6), or unix:///PATH when `unix_ok`."""
    if not isinstance(text, str):
        raise InvalidArgument(f"invalid {what} {text!r}: expected HOST:PORT")
    if text.startswith(UNIX_SCHEME):
        path = text[len(UNIX_SCHEME):]
        if not unix_ok or not path.startswith("/"):
            expected = "HOST:PORT or unix:///PATH" if unix_ok else "HOST:PORT"
            raise InvalidArgument(f"invalid {what} {text!r}: expected {expected}")
        return HostPort(path, unix=True)
    host, sep, number = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        parse_ip(host, what, (6,))
    elif ":" in host:
        raise InvalidArgument(f"invalid {what} {text!r}: write an IPv6 address in brackets, [ADDRESS]:PORT")
    if not sep or not host or len(host) > 255 or not number.isdigit():
        expected = "HOST:PORT or unix:///PATH" if unix_ok else "HOST:PORT"
        raise InvalidArgument(f"invalid {what} {text!r}: expected {expected}")
    return HostPort(host, check_port(int(number), f"port in {what} {text!r}"))


# Docker's default address pools: a network created without --subnet takes the
# first subnet of SIZE bits carved from a BASE that nothing holds yet (the
# hosts' own subnets included). Written BASE:SIZE; the controller's option
# `default-address-pools` replaces them.
DEFAULT_ADDRESS_POOLS = ("172.16.0.0/12:16", "192.168.0.0/16:20")


def parse_pool(text: str) -> tuple[IPNetwork, int]:
    """BASE:SIZE, e.g. 10.200.0.0/16:24, or InvalidArgument."""
    base_text, sep, size_text = str(text).rpartition(":")
    if not sep or not size_text.isdigit():
        raise InvalidArgument(f"invalid address pool {text!r}: it must be BASE:SIZE, e.g. 10.200.0.0/16:24")
    base = parse_subnet(base_text, "address pool", bounded=False)
    size = int(size_text)
    if not base.prefixlen <= size <= PREFIX_BOUNDS[base.version][1]:
        raise InvalidArgument(f"invalid address pool {text!r}: the size must be between /{base.prefixlen} "
                              f"and /{PREFIX_BOUNDS[base.version][1]}")
    return base, size


def subnet_from_pools(pools: Iterable[str], taken: Mapping[str, IPNetwork | str]) -> IPNetwork:
    """The first subnet of the pools that overlaps nothing in `taken`."""
    for text in pools:
        base, size = parse_pool(text)
        for candidate in base.subnets(new_prefix=size):
            if reserved_clash(candidate) is None and overlaps(candidate, taken) is None:
                return candidate
    raise SubnetFull("the default address pools have no free subnet left: give --subnet")


def parse_ip_range(text: str, subnet: IPNetwork) -> IPNetwork:
    """--ip-range: a subnet inside the network's, where its dynamic addresses come from."""
    ip_range = parse_subnet(text, "ip range", bounded=False)
    if not ip_range.subnet_of(subnet):
        raise InvalidArgument(f"invalid ip range {text!r}: it is not inside the subnet {subnet}")
    return ip_range


def check_static_ip(text: str, subnet: IPNetwork, gateway: str, network: str) -> str:
    """--ip: a usable address of the network's subnet, in canonical form."""
    addr = parse_ip(text, "address", (subnet.version,))
    if addr not in subnet:
        raise InvalidArgument(f"invalid address {text!r}: it is outside the subnet {subnet} of network {network!r}")
    if addr in (subnet.network_address, subnet.broadcast_address) or str(addr) == gateway:
        raise InvalidArgument(f"invalid address {text!r}: it is the network, broadcast or gateway address "
                              f"of network {network!r}")
    return str(addr)
