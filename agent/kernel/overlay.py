"""One overlay network's sandbox on this host: a namespace holding br0 and vx<vni>.

The VXLAN device must send and receive on the host's underlay, yet sit on
a bridge inside the overlay namespace. The kernel gives a VXLAN device the
namespace of the netlink socket that created it for its UDP socket, even
when the same request (IFLA_NET_NS_FD) places the device itself in another
namespace. So the device is created from the agent's own (host) namespace
straight into the overlay namespace: equivalent to Docker's "create here,
then move", but in one request, so a crash can never strand the device in
the host namespace. Older leftovers of that kind are still cleaned up.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.kernel import families
from agent.kernel.links import (
    delete_link,
    ensure_only_address,
    get_link,
    link_kind,
    set_mtu_and_up,
)
from agent.kernel.netns import (
    ensure_netns,
    iproute,
    netns_exists,
    netns_path,
    remove_netns,
)
from agent.names import BRIDGE, vxlan_ifname
from proto import validate
from proto.addresses import UNDERLAY_FAMILIES

VXLAN_PORT = 4789
# Netlink reports "no id assigned" as -1 in an unsigned 32-bit field.
_NO_NSID = 0xFFFFFFFF


class VtepNotConfigured(LookupError):
    """The VTEP address is not assigned to any interface in this namespace."""


@dataclass(frozen=True)
class OverlaySpec:
    vni: int
    gateway: str  # br0's address, the network's gateway IP
    prefixlen: int
    vtep_ip: str  # this host's underlay address the VXLAN socket uses
    mtu: int  # container-side MTU (underlay MTU - 50); br0 and vx use it too

    def __post_init__(self) -> None:
        validate.vni(self.vni)
        families.interface(f"{self.gateway}/{self.prefixlen}", "gateway/prefixlen")
        families.address(self.vtep_ip, "vtep_ip", UNDERLAY_FAMILIES)
        validate.mtu(self.mtu)


async def ensure_overlay(netns: str, spec: OverlaySpec) -> None:
    """Make `netns` hold br0 (gateway address) with vx<vni> enslaved, all up.

    A VXLAN device whose parameters differ from `spec` (e.g. the VTEP IP
    changed) is replaced; its FDB and neighbour entries go with it, which
    the caller sees as an empty table on its next read.
    """
    # Fail early: a VXLAN device with a source address the host does not
    # own builds fine and then silently drops everything it sends.
    await underlay_mtu(spec.vtep_ip)
    await ensure_netns(netns)
    ifname = vxlan_ifname(spec.vni)
    await _remove_stranded_vxlan(ifname)
    async with iproute(netns) as ovl:
        bridge_index = await _ensure_bridge(ovl, spec)
        vxlan = await get_link(ovl, ifname)
        if vxlan is not None and not _vxlan_matches(
            vxlan, spec, await _current_netns_id_in(ovl)
        ):
            await delete_link(ovl, vxlan["index"])
            vxlan = None
        if vxlan is None:
            await _create_vxlan(ifname, netns, spec)
            vxlan = await get_link(ovl, ifname)
            if vxlan is None:
                raise RuntimeError(
                    f"vxlan {ifname} was created but is not in {netns}"
                )
        await _attach_vxlan(ovl, vxlan, bridge_index, spec.mtu)


async def remove_overlay(netns: str) -> None:
    """Remove the overlay namespace and everything in it; absent is fine.

    Namespace teardown is asynchronous in the kernel: its devices linger
    until the last reference drops. A lingering VXLAN device still claims
    its VNI on the host's UDP socket and would make an immediate re-create
    fail, and lingering veths keep the containers' ends alive, so the
    links are deleted synchronously first.
    """
    if netns_exists(netns):
        async with iproute(netns) as ovl:
            links = [link async for link in await ovl.link("dump")]
            # The VXLAN device first: it is the one holding host resources.
            links.sort(key=lambda link: link_kind(link) != "vxlan")
            for link in links:
                if link.get("ifname") != "lo":
                    await delete_link(ovl, link["index"])
    await remove_netns(netns)


@dataclass(frozen=True)
class Underlay:
    """The interface in this namespace that holds the VTEP address."""
    mtu: int
    subnet: str     # the VTEP address's own subnet there, e.g. 10.231.0.0/24


async def underlay(vtep_ip: str) -> Underlay:
    vtep = families.address(vtep_ip, "vtep_ip", UNDERLAY_FAMILIES)
    async with iproute() as ipr:
        found = None
        async for addr in await ipr.addr("dump", family=families.family_of(vtep).af):
            if addr.get("address") == str(vtep):
                found = addr
                break
        if found is None:
            raise VtepNotConfigured(
                f"VTEP address {vtep_ip} is not configured on any interface "
                f"in this network namespace"
            )
        (link,) = await ipr.link("get", index=found["index"])
        subnet = ipaddress.ip_interface(f"{vtep}/{found['prefixlen']}").network
        return Underlay(mtu=link.get("mtu"), subnet=str(subnet))


async def underlay_mtu(vtep_ip: str) -> int:
    """MTU of the interface in the current namespace that holds `vtep_ip`."""
    return (await underlay(vtep_ip)).mtu


async def _ensure_bridge(ovl: AsyncIPRoute, spec: OverlaySpec) -> int:
    bridge = await get_link(ovl, BRIDGE)
    if bridge is not None and link_kind(bridge) != "bridge":
        await delete_link(ovl, bridge["index"])
        bridge = None
    if bridge is None:
        await ovl.link("add", ifname=BRIDGE, kind="bridge", mtu=spec.mtu)
        bridge = await get_link(ovl, BRIDGE)
    index = bridge["index"]
    await ensure_only_address(ovl, index, spec.gateway, spec.prefixlen)
    await set_mtu_and_up(ovl, bridge, spec.mtu)
    return index


async def _current_netns_id_in(ovl: AsyncIPRoute) -> int | None:
    """The id the overlay namespace uses to refer to our (host) namespace."""
    fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        reply = await ovl.get_netnsid(fd=fd)
    finally:
        os.close(fd)
    if reply is None or reply["nsid"] in (None, _NO_NSID):
        return None
    return reply["nsid"]


def _vxlan_matches(link, spec: OverlaySpec, host_nsid: int | None) -> bool:
    if link_kind(link) != "vxlan":
        return False
    data = link.get(("linkinfo", "data"))
    if data is None:
        return False
    # The UDP socket must live in the host namespace: a device created
    # inside the overlay namespace reports no link-netnsid at all.
    if host_nsid is None or link.get("IFLA_LINK_NETNSID") != host_nsid:
        return False
    wanted = {
        "IFLA_VXLAN_ID": spec.vni,
        "IFLA_VXLAN_LOCAL": spec.vtep_ip,
        "IFLA_VXLAN_PORT": VXLAN_PORT,
        "IFLA_VXLAN_LEARNING": 0,
        "IFLA_VXLAN_PROXY": 1,
    }
    if any(data.get(key) != value for key, value in wanted.items()):
        return False
    # No flood destination and no pinned underlay device: every remote is
    # an explicit FDB entry and routing picks the underlay interface.
    for key in ("IFLA_VXLAN_GROUP", "IFLA_VXLAN_GROUP6", "IFLA_VXLAN_LINK"):
        if data.get(key) not in (None, 0, "0.0.0.0", "::"):
            return False
    return not data.get("IFLA_VXLAN_COLLECT_METADATA")


async def _remove_stranded_vxlan(ifname: str) -> None:
    """Delete a vx<vni> left in the host namespace (by a crash, or by hand).

    It would hold the VNI on the host's UDP socket: the kernel refuses a
    second device for it, and it would swallow the network's packets.
    """
    async with iproute() as host:
        stale = await get_link(host, ifname)
        if stale is not None and link_kind(stale) == "vxlan":
            await delete_link(host, stale["index"])


async def _create_vxlan(ifname: str, netns: str, spec: OverlaySpec) -> None:
    async with iproute() as host:
        try:
            await host.link(
                "add",
                ifname=ifname,
                kind="vxlan",
                vxlan_id=spec.vni,
                vxlan_local=spec.vtep_ip,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,
                vxlan_proxy=1,
                mtu=spec.mtu,
                net_ns_fd=netns_path(netns),
            )
        except NetlinkError as e:
            raise RuntimeError(
                f"cannot create vxlan {ifname} (VNI {spec.vni}, local "
                f"{spec.vtep_ip}) into {netns}: {e.args[-1]} (errno {e.code})"
            ) from e


async def _attach_vxlan(
    ovl: AsyncIPRoute, vxlan, bridge_index: int, mtu: int
) -> None:
    if vxlan.get("IFLA_MASTER") != bridge_index:
        await ovl.link("set", index=vxlan["index"], master=bridge_index)
    await set_mtu_and_up(ovl, vxlan, mtu)
