"""Local bridge networks in the host namespace (Docker's docker0 and
`docker network create --driver bridge`), and the link side of the gwbridge.

A bridge here is only the L3 gateway its containers route through: one
address (the gateway), up, with forwarding on. What may cross it is the
firewall's business (agent/kernel/firewall.py), which keeps the whole
nftables table for the host, so this module never touches nft.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from agent.kernel import families
from agent.kernel.links import (
    delete_link,
    ensure_only_address,
    get_link,
    link_kind,
    set_mtu_and_up,
)
from agent.kernel.netns import iproute
from proto import validate
from proto.addresses import IPNetwork, prefixlen

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


@dataclass(frozen=True)
class LocalBridgeSpec:
    name: str  # interface name, at most 15 characters
    subnet: str  # "172.17.0.0/16"
    gateway: str  # the bridge's own address, inside subnet
    mtu: int = 1500

    def __post_init__(self) -> None:
        check_bridge_addressing(self.name, self.subnet, self.gateway)
        validate.mtu(self.mtu)

    @property
    def prefixlen(self) -> int:
        return prefixlen(self.subnet)


def check_bridge_addressing(
    name: str, subnet: str, gateway: str, label: str = ""
) -> IPNetwork:
    """Validate a bridge's name, subnet and gateway; return the subnet.

    `label` prefixes the field names in errors ("bridges[2]." -> the
    message says "bridges[2].gateway ...").
    """
    try:
        validate.ifname(name)
    except ValueError as e:
        raise ValueError(f"{label}name: {e}") from None
    network = families.subnet(subnet, f"{label}subnet")
    address = families.address(gateway, f"{label}gateway", (network.version,))
    if address not in network:
        raise ValueError(f"{label}gateway {gateway} is outside subnet {subnet}")
    if network.prefixlen < network.max_prefixlen - 1 and address in (
        network.network_address,
        network.broadcast_address,
    ):
        raise ValueError(
            f"{label}gateway {gateway} is the network or broadcast address "
            f"of {subnet}"
        )
    return network


async def ensure_bridge(spec: LocalBridgeSpec) -> None:
    """Create or repair: a bridge, only the gateway address, up, mtu; forwarding on.

    A bridge that is already right is left untouched, so its ports stay.
    Something else under the name (a leftover veth, say) is replaced.
    """
    async with iproute() as ipr:
        link = await get_link(ipr, spec.name)
        if link is not None and link_kind(link) != "bridge":
            await delete_link(ipr, link["index"])
            link = None
        if link is None:
            await ipr.link("add", ifname=spec.name, kind="bridge", mtu=spec.mtu)
            link = await get_link(ipr, spec.name)
        await ensure_only_address(
            ipr, link["index"], spec.gateway, spec.prefixlen
        )
        await set_mtu_and_up(ipr, link, spec.mtu)
    await asyncio.to_thread(_enable_ip_forward)


async def remove_bridge(name: str) -> None:
    """Delete the bridge; absent is fine. Its ports are detached, not deleted.

    Only a bridge is deleted: an unrelated link that happens to carry the
    name is none of our business. ip_forward stays on, since other
    software on the host may rely on it.
    """
    validate.ifname(name)
    async with iproute() as ipr:
        link = await get_link(ipr, name)
        if link is not None and link_kind(link) == "bridge":
            await delete_link(ipr, link["index"])


async def list_bridges(prefix: str) -> list[str]:
    """Names of the bridges in this namespace that start with `prefix`, sorted."""
    async with iproute() as ipr:
        names = [
            link.get("ifname")
            async for link in await ipr.link("dump")
            if link_kind(link) == "bridge"
        ]
    return sorted(n for n in names if n.startswith(prefix))


def _enable_ip_forward() -> None:
    # /proc/sys/net is per network namespace: this is the current one's.
    with open(IP_FORWARD, "r+") as f:
        if f.read().strip() != "1":
            f.seek(0)
            f.write("1\n")
