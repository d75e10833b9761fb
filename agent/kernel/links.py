"""Small link/address operations the overlay, veth and gwbridge code share.

Each one reads before it writes, so applying the same desired state twice
sends no change requests the second time.
"""
from __future__ import annotations

import errno

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.kernel.families import family_of

IFF_UP = 1


async def get_link(ipr: AsyncIPRoute, ifname: str):
    """The link message for `ifname`, or None if there is no such link."""
    try:
        (link,) = await ipr.link("get", ifname=ifname)
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return None
        raise
    return link


async def delete_link(ipr: AsyncIPRoute, index: int) -> None:
    """Delete a link; one that is already gone is not an error."""
    try:
        await ipr.link("del", index=index)
    except NetlinkError as e:
        if e.code != errno.ENODEV:
            raise


def link_kind(link) -> str | None:
    return link.get(("linkinfo", "kind"))


async def set_mtu_and_up(ipr: AsyncIPRoute, link, mtu: int) -> None:
    if link.get("mtu") != mtu:
        await ipr.link("set", index=link["index"], mtu=mtu)
    if not link["flags"] & IFF_UP:
        await ipr.link("set", index=link["index"], state="up")


async def ensure_only_address(
    ipr: AsyncIPRoute, index: int, address: str, prefixlen: int
) -> None:
    """Exactly one address of its family on the link: `address/prefixlen`."""
    present = False
    family = family_of(address)
    async for addr in await ipr.addr("dump", family=family.af, index=index):
        if addr.get("address") == address and addr["prefixlen"] == prefixlen:
            present = True
        else:
            await ipr.addr(
                "del",
                index=index,
                address=addr.get("address"),
                prefixlen=addr["prefixlen"],
            )
    if not present:
        await ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
