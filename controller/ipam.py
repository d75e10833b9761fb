"""Address, VNI and name rules: pure functions, no I/O.

The store reads what is taken from etcd, asks these functions what to pick,
and lets an etcd transaction decide who wins a race.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network

from controller.errors import InvalidArgument, ResourceExhausted

# /8 is already 16M addresses; below /30 there is no room for a gateway and a container.
MIN_PREFIX_LEN = 8
MAX_PREFIX_LEN = 30

VNI_MIN = 1
VNI_MAX = 2**24 - 1
# Automatic VNIs start high so they stay clear of small numbers users like to pin.
AUTO_VNI_START = 4096

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
_NAME_RE = re.compile(NAME_PATTERN)


class SubnetFull(ResourceExhausted):
    pass


def validate_name(kind: str, name: str) -> str:
    """Names become etcd key parts and interface/host labels, hence the strict rule."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"invalid {kind} name {name!r}: it must match {NAME_PATTERN} "
            "(a letter or digit first, then letters, digits, '_', '.' or '-', at most 63 characters)"
        )
    return name


def parse_subnet(cidr: str) -> IPv4Network:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {cidr!r}: {exc}") from None
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(f"invalid subnet {cidr!r}: only IPv4 subnets are supported")
    if net.network_address != ipaddress.ip_interface(cidr).ip:
        raise InvalidArgument(
            f"invalid subnet {cidr!r}: host bits are set (the network is {net})"
        )
    if not MIN_PREFIX_LEN <= net.prefixlen <= MAX_PREFIX_LEN:
        raise InvalidArgument(
            f"invalid subnet {cidr!r}: the prefix length must be between "
            f"/{MIN_PREFIX_LEN} and /{MAX_PREFIX_LEN}"
        )
    return net


def default_gateway(subnet: IPv4Network) -> str:
    return str(subnet.network_address + 1)


def check_gateway(subnet: IPv4Network, gateway: str) -> str:
    """Return the gateway in canonical form, or raise naming what is wrong with it."""
    try:
        addr = IPv4Address(gateway)
    except ValueError as exc:
        raise InvalidArgument(f"invalid gateway {gateway!r}: {exc}") from None
    if addr not in subnet:
        raise InvalidArgument(f"invalid gateway {gateway!r}: it is outside the subnet {subnet}")
    if addr == subnet.network_address:
        raise InvalidArgument(f"invalid gateway {gateway!r}: it is the network address of {subnet}")
    if addr == subnet.broadcast_address:
        raise InvalidArgument(f"invalid gateway {gateway!r}: it is the broadcast address of {subnet}")
    return str(addr)


def overlaps(subnet: IPv4Network, other_subnets: Mapping[str, IPv4Network | str]) -> str | None:
    """Name of the first network (by name) whose subnet overlaps `subnet`, else None."""
    for name in sorted(other_subnets):
        if subnet.overlaps(ipaddress.ip_network(other_subnets[name])):
            return name
    return None


def next_free_ip(
    subnet: IPv4Network,
    gateway: str,
    taken: set[str],
    hint: str | None = None,
    *,
    network: str = "",
) -> str:
    """The first usable address at or after `hint` (wrapping around), else from the start.

    Skips the network, broadcast and gateway addresses and everything in `taken`.
    A hint spreads concurrent allocators over the subnet so they collide less;
    `network` only names the network in the SubnetFull message.
    """
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - 1
    size = last - first + 1
    start = first
    if hint is not None:
        hinted = int(IPv4Address(hint))
        if first <= hinted <= last:
            start = hinted
    skip = taken | {gateway}
    for offset in range(size):
        candidate = str(IPv4Address(first + (start - first + offset) % size))
        if candidate not in skip:
            return candidate
    owner = f"network {network!r}" if network else "the network"
    raise SubnetFull(f"{owner} has no free address in {subnet}")


def mac_for_ip(ip: str) -> str:
    """Docker's scheme: 02:42 then the IPv4 bytes, so a reused IP maps to the same MAC
    and stale neighbour entries elsewhere stay correct."""
    return "02:42:" + ":".join(f"{b:02x}" for b in IPv4Address(ip).packed)


def check_vni(vni: int) -> int:
    if isinstance(vni, bool) or not isinstance(vni, int) or not VNI_MIN <= vni <= VNI_MAX:
        raise InvalidArgument(f"invalid VNI {vni!r}: it must be between {VNI_MIN} and {VNI_MAX}")
    return vni


def next_free_vni(taken: set[int]) -> int:
    for vni in range(AUTO_VNI_START, VNI_MAX + 1):
        if vni not in taken:
            return vni
    raise ResourceExhausted(f"no free VNI left between {AUTO_VNI_START} and {VNI_MAX}")
