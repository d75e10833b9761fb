"""The few rtnetlink messages the overlay table needs, packed with struct.

pyroute2 spends ~0.3 ms building one message; the kernel applies an FDB
entry in ~15 us. These layouts never vary (a fixed header and one or two
fixed-size attributes), so each is one precompiled struct.Struct and costs
about a microsecond. Decoding covers what the table reads back: netlink
acknowledgements, neighbour/FDB dump entries and a link's index.

Layouts (all little-endian host order, as netlink is):
  nlmsghdr  len:u32 type:u16 flags:u16 seq:u32 pid:u32         16 bytes
  ndmsg     family:u8 pad:3 ifindex:i32 state:u16 flags:u8 type:u8   12
  ifinfomsg family:u8 pad:1 type:u16 index:i32 flags:u32 change:u32 16
  nlattr    len:u16 type:u16 payload, padded to 4 bytes
"""
from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple

AF_INET = socket.AF_INET
AF_BRIDGE = 7

# <linux/netlink.h>
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400

# <linux/rtnetlink.h>
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
RTM_GETNEIGH = 30
IFLA_IFNAME = 3

# <linux/neighbour.h>
NDA_DST = 1
NDA_LLADDR = 2
NTF_SELF = 0x02
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80

PUT_FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
DEL_FLAGS = NLM_F_REQUEST | NLM_F_ACK
# The VXLAN driver's own table ("self"), not the bridge master's; a
# permanent entry that is never probed.
FDB_STATE = NUD_PERMANENT | NUD_NOARP
# What `bridge fdb del` sends; the driver ignores the state on delete.
FDB_DEL_STATE = NUD_NOARP
NEIGH_STATE = NUD_PERMANENT

_HEADER = "IHHII"
_NDMSG = "B3xiHBB"
_NLMSGHDR = struct.Struct("=" + _HEADER)
# Every attribute below is (len, type, payload[, padding]).
_FDB_PUT = struct.Struct("=" + _HEADER + _NDMSG + "HH6s2x" + "HH4s")
_FDB_DEL = struct.Struct("=" + _HEADER + _NDMSG + "HH6s2x")
_NEIGH_PUT = struct.Struct("=" + _HEADER + _NDMSG + "HH4s" + "HH6s2x")
_NEIGH_DEL = struct.Struct("=" + _HEADER + _NDMSG + "HH4s")
_NEIGH_DUMP = struct.Struct("=" + _HEADER + _NDMSG)
_IFINFOMSG = struct.Struct("=BxHiII")
_NDMSG_BODY = struct.Struct("=" + _NDMSG)
_NLATTR = struct.Struct("=HH")
_ERRNO = struct.Struct("=i")

# Lengths of a MAC and an IPv4 attribute including their 4-byte headers.
_MAC_ATTR_LEN = 4 + 6
_IPV4_ATTR_LEN = 4 + 4


def fdb_put(seq: int, ifindex: int, mac: bytes, vtep: bytes) -> bytes:
    """Create or replace the VXLAN FDB entry mac -> vtep (IPv4, 4 bytes)."""
    return _FDB_PUT.pack(
        _FDB_PUT.size, RTM_NEWNEIGH, PUT_FLAGS, seq, 0,
        AF_BRIDGE, ifindex, FDB_STATE, NTF_SELF, 0,
        _MAC_ATTR_LEN, NDA_LLADDR, mac,
        _IPV4_ATTR_LEN, NDA_DST, vtep,
    )


def fdb_del(seq: int, ifindex: int, mac: bytes) -> bytes:
    """Delete the VXLAN FDB entry for mac with all its remotes.

    NDA_DST is left out on purpose: with it, the driver removes only that
    one remote and keeps the entry while others remain.
    """
    return _FDB_DEL.pack(
        _FDB_DEL.size, RTM_DELNEIGH, DEL_FLAGS, seq, 0,
        AF_BRIDGE, ifindex, FDB_DEL_STATE, NTF_SELF, 0,
        _MAC_ATTR_LEN, NDA_LLADDR, mac,
    )


def neigh_put(seq: int, ifindex: int, ip: bytes, mac: bytes) -> bytes:
    """Create or replace the permanent IPv4 neighbour ip -> mac."""
    return _NEIGH_PUT.pack(
        _NEIGH_PUT.size, RTM_NEWNEIGH, PUT_FLAGS, seq, 0,
        AF_INET, ifindex, NEIGH_STATE, 0, 0,
        _IPV4_ATTR_LEN, NDA_DST, ip,
        _MAC_ATTR_LEN, NDA_LLADDR, mac,
    )


def neigh_del(seq: int, ifindex: int, ip: bytes) -> bytes:
    return _NEIGH_DEL.pack(
        _NEIGH_DEL.size, RTM_DELNEIGH, DEL_FLAGS, seq, 0,
        AF_INET, ifindex, 0, 0, 0,
        _IPV4_ATTR_LEN, NDA_DST, ip,
    )


def neigh_dump(seq: int, family: int) -> bytes:
    """Dump every neighbour (AF_INET) or FDB entry (AF_BRIDGE) of the namespace.

    Exactly an ndmsg and nothing else: for AF_BRIDGE the kernel guesses the
    legacy header type from the length, and a bare ndmsg is unambiguous.
    """
    return _NEIGH_DUMP.pack(
        _NEIGH_DUMP.size, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, 0,
        family, 0, 0, 0, 0,
    )


def getlink(seq: int, ifname: str) -> bytes:
    """Ask for one link by name; the reply is RTM_NEWLINK or an error."""
    name = ifname.encode() + b"\0"
    attr = _NLATTR.pack(4 + len(name), IFLA_IFNAME) + name + _padding(len(name))
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST, seq, 0
    )
    return header + body


# NamedTuples rather than dataclasses: one is built per acknowledgement and
# per dumped entry, tens of thousands per table, and they are cheaper.
class Message(NamedTuple):
    """One netlink message inside a received buffer (offsets into it)."""

    type: int
    flags: int
    seq: int
    offset: int  # of the payload, just past the header
    end: int


def messages(buf: bytes | bytearray | memoryview, size: int) -> Iterator[Message]:
    """The messages in the first `size` bytes of a datagram from the kernel."""
    offset = 0
    while offset + _NLMSGHDR.size <= size:
        length, msg_type, flags, seq, _pid = _NLMSGHDR.unpack_from(buf, offset)
        if length < _NLMSGHDR.size or offset + length > size:
            raise ValueError(f"malformed netlink message at offset {offset}")
        yield Message(msg_type, flags, seq, offset + _NLMSGHDR.size, offset + length)
        offset += _align(length)


def ack_errno(buf: bytes | bytearray | memoryview, msg: Message) -> int:
    """For an NLMSG_ERROR: 0 for success, else the positive errno."""
    (error,) = _ERRNO.unpack_from(buf, msg.offset)
    return -error


class Neighbour(NamedTuple):
    """The parts of a neighbour / FDB dump entry the table looks at."""

    family: int
    ifindex: int
    state: int
    flags: int
    dst: bytes | None
    lladdr: bytes | None


def parse_neighbour(buf: bytes | bytearray | memoryview, msg: Message) -> Neighbour:
    family, ifindex, state, flags, _type = _NDMSG_BODY.unpack_from(buf, msg.offset)
    attrs = _attributes(buf, msg.offset + _NDMSG_BODY.size, msg.end)
    return Neighbour(
        family, ifindex, state, flags, attrs.get(NDA_DST), attrs.get(NDA_LLADDR)
    )


def link_index(buf: bytes | bytearray | memoryview, msg: Message) -> int:
    """The ifindex of an RTM_NEWLINK message."""
    _family, _type, index, _flags, _change = _IFINFOMSG.unpack_from(buf, msg.offset)
    return index


def _attributes(buf: bytes | bytearray | memoryview, offset: int, end: int) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    while offset + _NLATTR.size <= end:
        length, attr_type = _NLATTR.unpack_from(buf, offset)
        if length < _NLATTR.size or offset + length > end:
            break  # a truncated attribute ends the list; nothing after it is trustworthy
        # Strip NLA_F_NESTED / NLA_F_NET_BYTEORDER: only the type number matters here.
        attrs[attr_type & 0x3FFF] = bytes(buf[offset + _NLATTR.size : offset + length])
        offset += _align(length)
    return attrs


def _align(length: int) -> int:
    return (length + 3) & ~3


def _padding(length: int) -> bytes:
    return b"\0" * (_align(length) - length)
