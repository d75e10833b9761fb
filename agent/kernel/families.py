"""The address families the data plane code programs, told from the address itself.

proto.addresses parses every address and says which families a feature
accepts (OVERLAY_FAMILIES for container networks, UNDERLAY_FAMILIES for
VTEPs). This module says how the kernel code programs an address of a
family: its netlink family, its nftables family, its default route. The
kernel modules ask `family_of(address)` instead of assuming IPv4, and an
address of a family they cannot program yet is refused here, with one
message, before any netlink or nft request goes out.

Today that is IPv4 only: neighbour entries are AF_INET with 4-byte
addresses (rtnl_encode's layouts), the host firewall is an nft `ip` table,
and VXLAN devices get an IPv4 local address. Adding IPv6 to the data plane
starts with its row in PROGRAMMED, the 16-byte layouts in rtnl_encode and
6 in proto.addresses.OVERLAY_FAMILIES.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface

from proto.addresses import OVERLAY_FAMILIES, IPAddress, IPNetwork, parse_ip, parse_subnet
from proto.errors import InvalidArgument

IPInterface = IPv4Interface | IPv6Interface


@dataclass(frozen=True)
class Family:
    version: int        # 4 or 6, as ipaddress's .version
    af: int             # the netlink/socket address family
    nft: str            # nftables' table family and the payload protocol of its addresses
    any_network: str    # the destination of a default route
    max_prefixlen: int


IPV4 = Family(version=4, af=socket.AF_INET, nft="ip", any_network="0.0.0.0/0", max_prefixlen=32)

# The families the kernel code can program, by version.
PROGRAMMED: dict[int, Family] = {4: IPV4}


def family_of(value: IPAddress | IPNetwork | IPInterface | str, what: str = "address") -> Family:
    """The family of an address, subnet or interface address; InvalidArgument
    for a family the data plane cannot program."""
    if isinstance(value, str):
        value = parse_ip(value, what)
    family = PROGRAMMED.get(value.version)
    if family is None:
        supported = " and ".join(f"IPv{v}" for v in PROGRAMMED)
        raise InvalidArgument(f"{what} {value} is IPv{value.version}; the data plane programs "
                              f"{supported} only")
    return family


def overlay() -> tuple[Family, ...]:
    """The families of container networks that the kernel code programs."""
    return tuple(PROGRAMMED[v] for v in OVERLAY_FAMILIES if v in PROGRAMMED)


def nft_table_family(families: Iterable[Family]) -> str:
    """The nftables family of one table holding rules for `families`."""
    names = sorted({f.nft for f in families})
    return names[0] if len(names) == 1 else "inet"


def address(text: object, what: str, families: Iterable[int] = OVERLAY_FAMILIES) -> IPAddress:
    """An address of one of `families` (proto.addresses' rule) that the kernel code programs."""
    value = parse_ip(text, what, families)
    family_of(value, what)
    return value


def subnet(text: object, what: str) -> IPNetwork:
    """A container network's subnet (no host bits, any prefix length) the kernel code programs."""
    value = parse_subnet(text, what, OVERLAY_FAMILIES, bounded=False)
    family_of(value, what)
    return value


def interface(text: object, what: str) -> IPInterface:
    """ADDRESS/PREFIXLEN of a container network, as a link carries it."""
    ip, slash, length = text.partition("/") if isinstance(text, str) else ("", "", "")
    if not slash or not length.isdigit():
        raise InvalidArgument(f"invalid {what} {text!r}: expected ADDRESS/PREFIXLEN")
    value = address(ip, what)
    if int(length) > family_of(value, what).max_prefixlen:
        raise InvalidArgument(f"invalid {what} {text!r}: the prefix length is longer than the address")
    return ipaddress.ip_interface(f"{value}/{int(length)}")


def packed(text: str, what: str, families: Iterable[int] = OVERLAY_FAMILIES) -> bytes:
    """The address's bytes for a netlink attribute.

    Tables carry tens of thousands of addresses: inet_pton, as strict as
    ipaddress, packs a valid one in a fraction of ipaddress's time; only a
    refused one goes the long way, for its message.
    """
    families = tuple(families)
    for version in families:
        family = PROGRAMMED.get(version)
        if family is not None:
            try:
                return socket.inet_pton(family.af, text)
            except (OSError, TypeError):
                pass
    return address(text, what, families).packed
