"""The MAC/IP -> VTEP table of one overlay network, as the kernel holds it.

Two kinds of entries on the network's vx<vni> device:
  FDB (bridge family, "self", permanent): remote MAC -> remote VTEP IP,
      where the VXLAN device sends frames for that MAC;
  neighbour (inet family, permanent): remote IP -> remote MAC, which the
      device's ARP proxy answers from, so no ARP crosses the underlay.

`program` sends its requests in batches: many netlink messages per send()
on one socket, then collects one acknowledgement per message, so a failure
is reported for exactly the entry that caused it.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2 import AsyncIPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nlsocket import NetlinkRequest
from pyroute2.netlink.rtnl import RTM_DELNEIGH, RTM_NEWNEIGH
from pyroute2.netlink.rtnl.ndmsg import NTF_SELF, NUD_NOARP, NUD_PERMANENT, ndmsg

from agent.kernel.links import AF_INET, get_link
from agent.kernel.netns import iproute
from agent.names import vxlan_ifname

AF_BRIDGE = 7

# The kernel queues every acknowledgement before send() returns; if they
# overflow the socket's receive buffer they are dropped and the wait for
# them never ends. 256 acks (error acks echo the request) stay far below
# the 1 MiB buffer.
BATCH_SIZE = 256
# One batch is processed synchronously by the kernel inside send(); this
# only fires if acks went missing anyway.
BATCH_TIMEOUT = 30.0

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_PUT_FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
_DEL_FLAGS = NLM_F_REQUEST | NLM_F_ACK


async def read_fdb(netns: str, vni: int) -> dict[str, str]:
    """mac -> VTEP IP for the permanent `self` FDB entries with a remote."""
    async with iproute(netns) as ipr:
        index = await _vxlan_index(ipr, netns, vni)
        table: dict[str, str] = {}
        async for entry in await ipr.fdb("dump"):
            if (
                entry["ifindex"] == index
                and entry["flags"] & NTF_SELF
                and entry["state"] & NUD_PERMANENT
            ):
                vtep = entry.get("NDA_DST")
                mac = entry.get("NDA_LLADDR")
                if vtep is not None and mac is not None:
                    table[mac.lower()] = vtep
        return table


async def read_neighbours(netns: str, vni: int) -> dict[str, str]:
    """ip -> mac for the permanent neighbour entries on the VXLAN device."""
    async with iproute(netns) as ipr:
        index = await _vxlan_index(ipr, netns, vni)
        table: dict[str, str] = {}
        async for entry in await ipr.neigh("dump", family=AF_INET):
            if entry["ifindex"] == index and entry["state"] & NUD_PERMANENT:
                ip = entry.get("NDA_DST")
                mac = entry.get("NDA_LLADDR")
                if ip is not None and mac is not None:
                    table[ip] = mac.lower()
        return table


async def program(
    netns: str,
    vni: int,
    fdb_put: dict[str, str],
    fdb_del: Iterable[str],
    neigh_put: dict[str, str],
    neigh_del: Iterable[str],
) -> list[str]:
    """Apply all changes; return one message per entry that failed.

    Puts replace whatever the kernel has for that MAC / IP. Deleting an
    entry that is already gone counts as success. A malformed MAC or IP is
    reported like a kernel refusal, and the other entries still go in.
    Deletes are sent before puts, so an entry in both ends up present.
    """
    errors: list[str] = []
    async with iproute(netns) as ipr:
        index = await _vxlan_index(ipr, netns, vni)
        changes = _build_changes(
            index, fdb_put, fdb_del, neigh_put, neigh_del, errors
        )
        for start in range(0, len(changes), BATCH_SIZE):
            batch = changes[start : start + BATCH_SIZE]
            try:
                async with asyncio.timeout(BATCH_TIMEOUT):
                    errors.extend(await _send_batch(ipr, batch))
            except TimeoutError:
                raise TimeoutError(
                    f"{netns} vx{vni}: kernel acknowledgements for "
                    f"{len(batch)} table entries did not arrive within "
                    f"{BATCH_TIMEOUT}s"
                ) from None
    return errors


@dataclass
class _Change:
    label: str  # names the entry in error messages: "fdb put 02:..->10.0.0.2"
    msg: ndmsg
    msg_type: int
    msg_flags: int
    is_delete: bool


def _build_changes(
    index: int,
    fdb_put: dict[str, str],
    fdb_del: Iterable[str],
    neigh_put: dict[str, str],
    neigh_del: Iterable[str],
    errors: list[str],
) -> list[_Change]:
    changes: list[_Change] = []

    def add(label: str, build) -> None:
        try:
            changes.append(build())
        except ValueError as e:
            errors.append(f"{label}: {e}")

    for mac in fdb_del:
        add(f"fdb del {mac}", lambda mac=mac: _fdb_del(index, mac))
    for ip in neigh_del:
        add(f"neigh del {ip}", lambda ip=ip: _neigh_del(index, ip))
    for mac, vtep in fdb_put.items():
        add(
            f"fdb put {mac} -> {vtep}",
            lambda mac=mac, vtep=vtep: _fdb_put(index, mac, vtep),
        )
    for ip, mac in neigh_put.items():
        add(
            f"neigh put {ip} -> {mac}",
            lambda ip=ip, mac=mac: _neigh_put(index, ip, mac),
        )
    return changes


def _fdb_put(index: int, mac: str, vtep: str) -> _Change:
    mac, vtep = _mac(mac), _ipv4(vtep)
    msg = _ndmsg(AF_BRIDGE, index, NUD_PERMANENT | NUD_NOARP, NTF_SELF)
    msg["attrs"] = [("NDA_LLADDR", mac), ("NDA_DST", vtep)]
    return _Change(f"fdb put {mac} -> {vtep}", msg, RTM_NEWNEIGH, _PUT_FLAGS, False)


def _fdb_del(index: int, mac: str) -> _Change:
    mac = _mac(mac)
    # Without NDA_DST the VXLAN driver drops the entry with all its remotes.
    msg = _ndmsg(AF_BRIDGE, index, NUD_NOARP, NTF_SELF)
    msg["attrs"] = [("NDA_LLADDR", mac)]
    return _Change(f"fdb del {mac}", msg, RTM_DELNEIGH, _DEL_FLAGS, True)


def _neigh_put(index: int, ip: str, mac: str) -> _Change:
    ip, mac = _ipv4(ip), _mac(mac)
    msg = _ndmsg(AF_INET, index, NUD_PERMANENT, 0)
    msg["attrs"] = [("NDA_DST", ip), ("NDA_LLADDR", mac)]
    return _Change(f"neigh put {ip} -> {mac}", msg, RTM_NEWNEIGH, _PUT_FLAGS, False)


def _neigh_del(index: int, ip: str) -> _Change:
    ip = _ipv4(ip)
    msg = _ndmsg(AF_INET, index, 0, 0)
    msg["attrs"] = [("NDA_DST", ip)]
    return _Change(f"neigh del {ip}", msg, RTM_DELNEIGH, _DEL_FLAGS, True)


def _ndmsg(family: int, index: int, state: int, flags: int) -> ndmsg:
    # Filled in directly rather than through IPRoute.neigh(): its keyword
    # processing costs more than the encoding itself.
    msg = ndmsg()
    msg["family"] = family
    msg["ifindex"] = index
    msg["state"] = state
    msg["flags"] = flags
    msg["ndm_type"] = 0
    return msg


async def _send_batch(ipr: AsyncIPRoute, batch: list[_Change]) -> list[str]:
    requests = [
        NetlinkRequest(
            ipr, change.msg, msg_type=change.msg_type, msg_flags=change.msg_flags
        )
        for change in batch
    ]
    for request in requests:
        await request.prepare()
    try:
        ipr.send(b"".join(bytes(request.msg.data) for request in requests))
    except OSError:
        for request in requests:
            request.cleanup()
        raise
    errors = []
    for change, request in zip(batch, requests):
        try:
            async for _ in request.response():
                pass
        except NetlinkError as e:
            if change.is_delete and e.code == errno.ENOENT:
                continue
            errors.append(f"{change.label}: {os.strerror(e.code)} (errno {e.code})")
    return errors


async def _vxlan_index(ipr: AsyncIPRoute, netns: str, vni: int) -> int:
    ifname = vxlan_ifname(vni)
    link = await get_link(ipr, ifname)
    if link is None:
        raise LookupError(f"vxlan device {ifname} does not exist in {netns}")
    return link["index"]


def _mac(value: str) -> str:
    mac = value.lower() if isinstance(value, str) else ""
    if not _MAC_RE.match(mac):
        raise ValueError(f"{value!r} is not a MAC address")
    return mac


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None
