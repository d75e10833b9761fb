"""The MAC/IP -> VTEP table of one overlay network, as the kernel holds it.

Two kinds of entries on the network's vx<vni> device:
  FDB (bridge family, "self", permanent): remote MAC -> remote VTEP IP,
      where the VXLAN device sends frames for that MAC;
  neighbour (inet family, permanent): remote IP -> remote MAC, which the
      device's ARP proxy answers from, so no ARP crosses the underlay.

Tables reach tens of thousands of entries, so this module talks raw
rtnetlink (rtnl_encode packs the messages, rtnl_batch windows them over one
socket and matches every acknowledgement to its request by sequence
number): a failure is reported for exactly the entry that caused it. The
socket work blocks, so it runs in a worker thread.
"""
from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
from collections.abc import Iterable

from agent.kernel import families
from agent.kernel import rtnl_encode as enc
from agent.kernel.rtnl_batch import RtnlChannel
from agent.names import vxlan_ifname
from proto.addresses import UNDERLAY_FAMILIES

# The kernel applies a whole window of requests inside send(), so their
# acknowledgements are already queued when we start waiting: this only
# fires if some went missing anyway.
BATCH_TIMEOUT = 30.0
# A dump of even 100k entries takes well under a second.
DUMP_TIMEOUT = 30.0

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

# What a request did, for naming it in an error: (verb, key, value or None).
_Entry = tuple[str, str, str | None]


async def read_fdb(netns: str, vni: int) -> dict[str, str]:
    """mac -> VTEP IP for the permanent `self` FDB entries with a remote."""
    index, found = await asyncio.to_thread(_dump, netns, vni, enc.AF_BRIDGE)
    table: dict[str, str] = {}
    for entry in found:
        if (
            entry.ifindex == index
            and entry.flags & enc.NTF_SELF
            and entry.state & enc.NUD_PERMANENT
            and entry.dst is not None
            and entry.lladdr is not None
        ):
            vtep = _ip_text(entry.dst)
            if vtep is not None:
                table[entry.lladdr.hex(":")] = vtep
    return table


async def read_neighbours(netns: str, vni: int) -> dict[str, str]:
    """ip -> mac for the permanent neighbour entries on the VXLAN device,
    of every family the overlay programs."""
    table: dict[str, str] = {}
    for family in families.overlay():
        index, found = await asyncio.to_thread(_dump, netns, vni, family.af)
        for entry in found:
            if (
                entry.ifindex == index
                and entry.state & enc.NUD_PERMANENT
                and entry.dst is not None
                and entry.lladdr is not None
            ):
                ip = _ip_text(entry.dst)
                if ip is not None:
                    table[ip] = entry.lladdr.hex(":")
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
    # Snapshots: the worker thread must not iterate containers that the
    # event loop's other tasks may change meanwhile.
    return await asyncio.to_thread(
        _program, netns, vni,
        list(fdb_put.items()), list(fdb_del), list(neigh_put.items()), list(neigh_del),
    )


def _program(
    netns: str,
    vni: int,
    fdb_put: list[tuple[str, str]],
    fdb_del: list[str],
    neigh_put: list[tuple[str, str]],
    neigh_del: list[str],
) -> list[str]:
    errors: list[str] = []
    with RtnlChannel(netns, BATCH_TIMEOUT) as channel:
        index = _vxlan_index(channel, netns, vni)
        first_seq = channel.reserve(len(fdb_put) + len(fdb_del) + len(neigh_put) + len(neigh_del))
        requests, entries = _encode(
            index, first_seq, fdb_put, fdb_del, neigh_put, neigh_del, errors
        )
        try:
            codes = channel.acknowledged(requests, first_seq)
        except TimeoutError as e:
            raise TimeoutError(f"{netns} vx{vni}: {e}") from None
    for code, (verb, key, value) in zip(codes, entries):
        if code == 0 or (code == errno.ENOENT and verb.endswith(" del")):
            continue
        label = f"{verb} {key}" if value is None else f"{verb} {key} -> {value}"
        errors.append(f"{label}: {os.strerror(code)} (errno {code})")
    return errors


def _encode(
    index: int,
    seq: int,
    fdb_put: list[tuple[str, str]],
    fdb_del: list[str],
    neigh_put: list[tuple[str, str]],
    neigh_del: list[str],
    errors: list[str],
) -> tuple[list[bytes], list[_Entry]]:
    """The requests, numbered from `seq`, and what each one is.

    An entry that cannot be encoded goes to `errors` and gets no request
    (its sequence number is simply left unused).
    """
    requests: list[bytes] = []
    entries: list[_Entry] = []
    for mac in fdb_del:
        try:
            text, raw = _mac(mac)
        except ValueError as e:
            errors.append(f"fdb del {mac}: {e}")
        else:
            requests.append(enc.fdb_del(seq, index, raw))
            entries.append(("fdb del", text, None))
        seq += 1
    for ip in neigh_del:
        try:
            raw = families.packed(ip, "neighbour address")
        except ValueError as e:
            errors.append(f"neigh del {ip}: {e}")
        else:
            requests.append(enc.neigh_del(seq, index, raw))
            entries.append(("neigh del", ip, None))
        seq += 1
    for mac, vtep in fdb_put:
        try:
            text, raw = _mac(mac)
            raw_vtep = families.packed(vtep, "VTEP address", UNDERLAY_FAMILIES)
        except ValueError as e:
            errors.append(f"fdb put {mac} -> {vtep}: {e}")
        else:
            requests.append(enc.fdb_put(seq, index, raw, raw_vtep))
            entries.append(("fdb put", text, vtep))
        seq += 1
    for ip, mac in neigh_put:
        try:
            raw_ip = families.packed(ip, "neighbour address")
            text, raw = _mac(mac)
        except ValueError as e:
            errors.append(f"neigh put {ip} -> {mac}: {e}")
        else:
            requests.append(enc.neigh_put(seq, index, raw_ip, raw))
            entries.append(("neigh put", ip, text))
        seq += 1
    return requests, entries


def _dump(netns: str, vni: int, family: int) -> tuple[int, list[enc.Neighbour]]:
    with RtnlChannel(netns, DUMP_TIMEOUT) as channel:
        index = _vxlan_index(channel, netns, vni)
        return index, channel.dump(
            lambda seq: enc.neigh_dump(seq, family), enc.parse_neighbour
        )


def _vxlan_index(channel: RtnlChannel, netns: str, vni: int) -> int:
    ifname = vxlan_ifname(vni)
    index = channel.link_index(ifname)
    if index is None:
        raise LookupError(f"vxlan device {ifname} does not exist in {netns}")
    return index


def _mac(value: str) -> tuple[str, bytes]:
    """The MAC in lower case, and its 6 bytes."""
    mac = value.lower() if isinstance(value, str) else ""
    if not _MAC_RE.match(mac):
        raise ValueError(f"{value!r} is not a MAC address")
    return mac, bytes.fromhex(mac.replace(":", ""))


def _ip_text(raw: bytes) -> str | None:
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return None
