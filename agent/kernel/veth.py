"""A container's network interface: a veth pair from its namespace to a bridge.

The pair is created by one netlink request sent from the bridge's
namespace, with the container end placed (IFLA_NET_NS_FD) straight into the
container namespace under its final name. Nothing ever exists under a
temporary name in the host namespace, so a crash mid-way leaves either the
whole pair or nothing; a pair whose halves no longer match is deleted and
rebuilt.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl.ndmsg import NTF_MASTER, NUD_NOARP

from agent.kernel import families
from agent.kernel.links import (
    delete_link,
    ensure_only_address,
    get_link,
    link_kind,
    set_mtu_and_up,
)
from agent.kernel.netns import iproute, netns_exists, netns_path
from proto import validate

_MAIN_TABLE = 254


# The namespace the agent runs in (the host's), for a pair whose "container" end stays there.
OWN_NETNS = "/proc/self/ns/net"


@dataclass(frozen=True)
class Interface:
    container_netns: str | None  # None: the current namespace (a host's own leg into a network)
    ifname: str  # inside the container: "eth0", "eth1", ...
    peer_netns: str | None  # where the bridge is; None = current namespace
    peer_ifname: str
    bridge: str  # bridge in peer_netns the peer end is enslaved to
    address: str  # "ip/prefixlen" on the container end
    mac: str | None
    mtu: int
    default_gateway: str | None
    isolated: bool = False  # bridge port isolation on the peer end
    # Hairpin on the peer end: a container reaching its own published port
    # through the host's address gets the DNAT'ed frame back on the port it
    # came in by (Docker sets it on every port when it has no userland proxy).
    hairpin: bool = False
    # The default route only if the namespace has none: an engine's namespace
    # may hold several endpoints, each with its way out; the first one sets it,
    # and when it goes the next pass lets another.
    default_if_none: bool = False
    # The container end waits in the current namespace for an engine to move
    # it into its own (Docker's sandbox): it gets only its MAC and MTU here, no
    # address and no link up, which the engine sets.
    handover: bool = False

    def __post_init__(self) -> None:
        validate.ifname(self.ifname)
        validate.ifname(self.peer_ifname)
        validate.ifname(self.bridge)
        families.interface(self.address, "address")
        if self.default_gateway is not None:
            families.address(self.default_gateway, "default_gateway")
        if self.mac is not None and not _is_unicast_mac(self.mac):
            raise ValueError(f"mac {self.mac!r} is not a unicast MAC address")
        validate.mtu(self.mtu)

    @property
    def ip(self) -> str:
        return str(families.interface(self.address, "address").ip)

    @property
    def prefixlen(self) -> int:
        return families.interface(self.address, "address").network.prefixlen


async def ensure_interface(iface: Interface) -> None:
    """Create or repair the pair; an intact, correct pair is left untouched."""
    async with iproute(iface.container_netns) as inner, iproute(
        iface.peer_netns
    ) as outer:
        bridge = await get_link(outer, iface.bridge)
        if bridge is None or link_kind(bridge) != "bridge":
            where = iface.peer_netns or "the current namespace"
            raise LookupError(
                f"bridge {iface.bridge} does not exist in {where}; "
                f"ensure the overlay or gwbridge first"
            )
        inner_end = await get_link(inner, iface.ifname)
        outer_end = await get_link(outer, iface.peer_ifname)
        if not _is_pair(inner_end, outer_end):
            # Whatever is there is a leftover (one half, or halves of two
            # different pairs): start clean.
            if inner_end is not None:
                await delete_link(inner, inner_end["index"])
            if outer_end is not None:
                await delete_link(outer, outer_end["index"])
            await _create_pair(outer, iface)
            inner_end = await get_link(inner, iface.ifname)
            outer_end = await get_link(outer, iface.peer_ifname)
            if not _is_pair(inner_end, outer_end):
                raise RuntimeError(
                    f"veth {iface.peer_ifname}/{iface.ifname} for "
                    f"{iface.container_netns} was created but is not visible"
                )
        await _configure_container_end(inner, inner_end, iface)
        await _configure_bridge_end(outer, outer_end, bridge["index"], iface)


async def remove_interface(iface: Interface) -> None:
    """Delete the pair; absent links or namespaces are not an error."""
    if iface.peer_netns is None or netns_exists(iface.peer_netns):
        async with iproute(iface.peer_netns) as outer:
            outer_end = await get_link(outer, iface.peer_ifname)
            if outer_end is not None and link_kind(outer_end) == "veth":
                await delete_link(outer, outer_end["index"])
    # Deleting one end takes the other with it; this catches an orphaned
    # container end whose peer was already gone or renamed.
    if iface.container_netns is None or netns_exists(iface.container_netns):
        async with iproute(iface.container_netns) as inner:
            inner_end = await get_link(inner, iface.ifname)
            if inner_end is not None:
                await delete_link(inner, inner_end["index"])


async def remove_unlisted(pattern: str, keep: set[str]) -> list[str]:
    """Delete every veth of the current namespace whose name matches `pattern` (a
    regular expression, whole name) but is not in `keep`; the names deleted."""
    removed = []
    async with iproute(None) as ipr:
        links = [link async for link in await ipr.link("dump")]
        for link in links:
            name = link.get("ifname") or ""
            if re.fullmatch(pattern, name) and name not in keep and link_kind(link) == "veth":
                await delete_link(ipr, link["index"])
                removed.append(name)
    return removed


async def prune_interfaces(container_netns: str, keep: set[str]) -> list[str]:
    """Delete every interface of the namespace but lo and `keep` (a network the
    container was disconnected from); returns the names deleted."""
    removed = []
    if not netns_exists(container_netns):
        return removed
    async with iproute(container_netns) as inner:
        links = [link async for link in await inner.link("dump")]
        for link in links:
            name = link.get("ifname")
            if name != "lo" and name not in keep:
                await delete_link(inner, link["index"])
                removed.append(name)
    return removed


async def bridge_end_exists(iface: Interface) -> bool:
    """Whether the bridge-side end of the pair is there (wherever the other end went)."""
    async with iproute(iface.peer_netns) as outer:
        link = await get_link(outer, iface.peer_ifname)
        return link is not None and link_kind(link) == "veth"


async def remove_host_link(ifname: str) -> None:
    """Delete the veth `ifname` of the current namespace (its peer goes too); absent is fine."""
    async with iproute(None) as ipr:
        link = await get_link(ipr, ifname)
        if link is not None and link_kind(link) == "veth":
            await delete_link(ipr, link["index"])


async def remove_interfaces_with_macs(container_netns: str | None, macs: set[str]) -> list[str]:
    """Delete the veths of the namespace whose MAC is one of `macs`; the names deleted."""
    removed = []
    async with iproute(container_netns) as inner:
        links = [link async for link in await inner.link("dump")]
        for link in links:
            if link_kind(link) == "veth" and (link.get("address") or "").lower() in macs:
                await delete_link(inner, link["index"])
                removed.append(link.get("ifname"))
    return removed


def _is_pair(inner_end, outer_end) -> bool:
    if inner_end is None or outer_end is None:
        return False
    if link_kind(inner_end) != "veth" or link_kind(outer_end) != "veth":
        return False
    # Each veth end reports its peer's ifindex (in the peer's namespace).
    return (
        inner_end.get("IFLA_LINK") == outer_end["index"]
        and outer_end.get("IFLA_LINK") == inner_end["index"]
    )


async def _create_pair(outer: AsyncIPRoute, iface: Interface) -> None:
    peer = {
        "ifname": iface.ifname,
        "net_ns_fd": OWN_NETNS if iface.container_netns is None else netns_path(iface.container_netns),
        "mtu": iface.mtu,
    }
    if iface.mac is not None:
        peer["address"] = iface.mac.lower()
    await outer.link(
        "add",
        ifname=iface.peer_ifname,
        kind="veth",
        mtu=iface.mtu,
        peer=peer,
    )


async def _configure_container_end(
    inner: AsyncIPRoute, link, iface: Interface
) -> None:
    index = link["index"]
    if iface.mac is not None and link.get("address") != iface.mac.lower():
        await inner.link("set", index=index, address=iface.mac.lower())
    if iface.handover:
        if link.get("mtu") != iface.mtu:
            await inner.link("set", index=index, mtu=iface.mtu)
        return  # handed over: the engine addresses it in its namespace
    await ensure_only_address(inner, index, iface.ip, iface.prefixlen)
    await set_mtu_and_up(inner, link, iface.mtu)
    if iface.default_gateway is not None:
        if iface.default_if_none:
            await _add_default_route_if_none(inner, index, iface.default_gateway)
        else:
            await _ensure_default_route(inner, index, iface.default_gateway)


async def _add_default_route_if_none(inner: AsyncIPRoute, index: int, gateway: str) -> None:
    family = families.family_of(gateway, "default_gateway")
    async for route in await inner.route("dump", family=family.af):
        if route["dst_len"] == 0 and route.get("table") == _MAIN_TABLE:
            return
    await inner.route("add", dst=family.any_network, gateway=gateway, oif=index)


async def _ensure_default_route(
    inner: AsyncIPRoute, index: int, gateway: str
) -> None:
    family = families.family_of(gateway, "default_gateway")
    async for route in await inner.route("dump", family=family.af):
        if (
            route["dst_len"] == 0
            and route.get("table") == _MAIN_TABLE
            and route.get("gateway") == gateway
            and route.get("oif") == index
        ):
            return
    await inner.route(
        "replace", dst=family.any_network, gateway=gateway, oif=index
    )


async def _configure_bridge_end(
    outer: AsyncIPRoute, link, bridge_index: int, iface: Interface
) -> None:
    index = link["index"]
    if link.get("IFLA_MASTER") != bridge_index:
        await outer.link("set", index=index, master=bridge_index)
        (link,) = await outer.link("get", index=index)
    isolated = link.get(("linkinfo", "slave_data", "IFLA_BRPORT_ISOLATED"))
    if bool(isolated) != iface.isolated:
        await outer.brport("set", index=index, isolated=int(iface.isolated))
    hairpin = link.get(("linkinfo", "slave_data", "IFLA_BRPORT_MODE"))
    if bool(hairpin) != iface.hairpin:
        await outer.brport("set", index=index, mode=int(iface.hairpin))
    if iface.mac is not None:
        await _pin_mac(outer, index, iface.mac)
    await set_mtu_and_up(outer, link, iface.mtu)


async def _pin_mac(outer: AsyncIPRoute, index: int, mac: str) -> None:
    """The container's MAC is its port's: a static bridge entry.

    Addresses, and so MACs, are reused: a container may get the address a
    container on another host had a moment ago. While that one talked to
    this host's containers, the bridge learned its MAC on the VXLAN port,
    and the entry outlives it (the bridge's ageing, minutes). Frames for the
    new local container then arrive on the VXLAN port, are looked up to the
    VXLAN port and dropped (never sent back out the port they came in by),
    until the container itself sends something: one that only answers, and
    whose neighbours' ARP the VXLAN device's proxy answers, stays
    unreachable from every other host. A static entry replaces the learned
    one and never ages; it goes with the port. It is not sticky: with port
    security off, learning may still move it, as it moves any entry (the
    port security tests' controls show what that allows), and the periodic
    pass puts it back. `replace` of an identical entry changes nothing, so
    every pass may send it."""
    await outer.fdb("replace", ifindex=index, lladdr=mac.lower(), flags=NTF_MASTER, state=NUD_NOARP)


def _is_unicast_mac(mac: str) -> bool:
    parts = mac.split(":")
    if len(parts) != 6:
        return False
    try:
        octets = [int(p, 16) for p in parts if len(p) == 2]
    except ValueError:
        return False
    return len(octets) == 6 and not octets[0] & 1
