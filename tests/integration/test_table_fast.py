"""The raw-rtnetlink table path: its encoder against pyroute2's, and
table.program / read_* at full size on a real kernel.

The kernel tests build the single-host overlay of tests/test_kernel.py
(namespaces named vxk<hex>, removed pass or fail) and run table calls in
its agent process, as the agent would.
"""
from __future__ import annotations

import errno
import socket
import struct

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from agent.kernel import netns, rtnl_batch, rtnl_encode as enc, table
from tests.helpers.kernel_lab import VNI, KernelLab, mac_for, one_host_with_overlay

MAC = "02:42:0a:4d:01:02"
MAC_RAW = bytes.fromhex("02420a4d0102")


# --------------------------------------------------------------------------
# encoder: byte for byte what pyroute2 builds for the same request


def _pyroute2(msg_type: int, flags: int, seq: int, family: int, ifindex: int,
              state: int, ndm_flags: int, attrs: list[tuple[str, str]]) -> bytes:
    msg = ndmsg()
    msg["family"], msg["ifindex"], msg["state"] = family, ifindex, state
    msg["flags"], msg["ndm_type"] = ndm_flags, 0
    msg["attrs"] = attrs
    msg["header"]["type"], msg["header"]["flags"] = msg_type, flags
    msg["header"]["sequence_number"], msg["header"]["pid"] = seq, 0
    msg.encode()
    return bytes(msg.data)


def test_fdb_messages_match_pyroute2():
    assert enc.fdb_put(7, 12, MAC_RAW, socket.inet_aton("10.99.0.2")) == _pyroute2(
        enc.RTM_NEWNEIGH, enc.PUT_FLAGS, 7, enc.AF_BRIDGE, 12,
        enc.NUD_PERMANENT | enc.NUD_NOARP, enc.NTF_SELF,
        [("NDA_LLADDR", MAC), ("NDA_DST", "10.99.0.2")],
    )
    assert enc.fdb_del(8, 12, MAC_RAW) == _pyroute2(
        enc.RTM_DELNEIGH, enc.DEL_FLAGS, 8, enc.AF_BRIDGE, 12,
        enc.NUD_NOARP, enc.NTF_SELF, [("NDA_LLADDR", MAC)],
    )


def test_neighbour_messages_match_pyroute2():
    assert enc.neigh_put(2**32 - 1, 3, socket.inet_aton("10.77.1.2"), MAC_RAW) == _pyroute2(
        enc.RTM_NEWNEIGH, enc.PUT_FLAGS, 2**32 - 1, socket.AF_INET, 3,
        enc.NUD_PERMANENT, 0, [("NDA_DST", "10.77.1.2"), ("NDA_LLADDR", MAC)],
    )
    assert enc.neigh_del(1, 3, socket.inet_aton("10.77.1.2")) == _pyroute2(
        enc.RTM_DELNEIGH, enc.DEL_FLAGS, 1, socket.AF_INET, 3, 0, 0,
        [("NDA_DST", "10.77.1.2")],
    )
    assert enc.neigh_dump(5, enc.AF_BRIDGE) == _pyroute2(
        enc.RTM_GETNEIGH, enc.NLM_F_REQUEST | enc.NLM_F_DUMP, 5, enc.AF_BRIDGE,
        0, 0, 0, [],
    )


def test_getlink_matches_pyroute2():
    for name in ("vx1", "vx4200", "vx16777215"):  # every padding length
        msg = ifinfmsg()
        msg["family"], msg["index"], msg["flags"], msg["change"] = 0, 0, 0, 0
        msg["attrs"] = [("IFLA_IFNAME", name)]
        msg["header"]["type"], msg["header"]["flags"] = enc.RTM_GETLINK, enc.NLM_F_REQUEST
        msg["header"]["sequence_number"], msg["header"]["pid"] = 3, 0
        msg.encode()
        assert enc.getlink(3, name) == bytes(msg.data)


def test_decoding_what_pyroute2_encodes():
    entry = _pyroute2(
        enc.RTM_NEWNEIGH, enc.NLM_F_MULTI, 4, enc.AF_BRIDGE, 9,
        enc.NUD_PERMANENT, enc.NTF_SELF,
        [("NDA_LLADDR", MAC), ("NDA_VNI", 4200), ("NDA_DST", "10.99.0.2")],
    )
    # An ack of seq 5 refused with EOPNOTSUPP, echoing a 16-byte header.
    ack = struct.pack("=IHHIIi", 36, enc.NLMSG_ERROR, 0, 5, 0, -errno.EOPNOTSUPP) + bytes(16)
    buf = bytearray(entry + ack + bytes(8))  # slack past `size` must be ignored
    first, second = enc.messages(buf, len(entry) + len(ack))
    assert (first.type, first.seq, second.type, second.seq) == (
        enc.RTM_NEWNEIGH, 4, enc.NLMSG_ERROR, 5
    )
    assert enc.parse_neighbour(buf, first) == enc.Neighbour(
        enc.AF_BRIDGE, 9, enc.NUD_PERMANENT, enc.NTF_SELF,
        socket.inet_aton("10.99.0.2"), MAC_RAW,
    )
    assert enc.ack_errno(buf, second) == errno.EOPNOTSUPP
    with pytest.raises(ValueError, match="malformed"):
        list(enc.messages(buf, len(entry) - 1))


# --------------------------------------------------------------------------
# table.program on a real kernel


def _table(n: int) -> tuple[dict[str, str], dict[str, str]]:
    ips = [f"10.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}" for i in range(n)]
    fdb = {mac_for(ip): f"10.99.{i % 250}.{1 + i % 199}" for i, ip in enumerate(ips)}
    return fdb, {ip: mac_for(ip) for ip in ips}


@pytest.mark.integration
async def test_ten_thousand_entries_replace_delete_and_one_refusal(lab: KernelLab):
    _, agent, ov, _ = await one_host_with_overlay(lab)
    n = 10_000
    fdb, neigh = _table(n)
    assert await agent.call(table.program, ov, VNI, fdb, [], neigh, []) == []
    assert await agent.call(table.read_fdb, ov, VNI) == fdb
    assert await agent.call(table.read_neighbours, ov, VNI) == neigh

    # Replace: existing entries change in place (not added beside).
    macs, ips = list(fdb), list(neigh)
    moved = {mac: "10.99.250.250" for mac in macs[::3]}
    remapped = {ip: "02:00:00:00:00:01" for ip in ips[::5]}
    # Delete present entries and absent ones (never there, and a duplicate).
    gone_macs, gone_ips = macs[1::7], ips[2::7]
    absent_macs = ["02:00:00:99:99:99", gone_macs[0]]
    absent_ips = ["10.200.0.1", gone_ips[0]]
    # Multicast MACs cannot be a VXLAN FDB entry with NLM_F_REPLACE: the
    # kernel refuses it. It sits mid-table, so mid-window, between entries
    # that must still apply.
    half = len(moved) // 2
    fdb_put = dict(list(moved.items())[:half])
    fdb_put["01:00:5e:00:00:01"] = "10.99.0.2"
    fdb_put.update(list(moved.items())[half:])
    errors = await agent.call(
        table.program, ov, VNI,
        fdb_put, gone_macs + absent_macs, remapped, gone_ips + absent_ips,
    )
    assert errors == [
        "fdb put 01:00:5e:00:00:01 -> 10.99.0.2: Operation not supported (errno 95)"
    ]
    want_fdb = {mac: vtep for mac, vtep in {**fdb, **moved}.items() if mac not in set(gone_macs)}
    want_neigh = {**neigh, **remapped}
    for ip in gone_ips:
        want_neigh.pop(ip, None)
    # Deletes go first: an entry both deleted and put ends up present.
    for ip in set(gone_ips) & set(remapped):
        want_neigh[ip] = remapped[ip]
    for mac in set(gone_macs) & set(moved):
        want_fdb[mac] = moved[mac]
    assert await agent.call(table.read_fdb, ov, VNI) == want_fdb
    assert await agent.call(table.read_neighbours, ov, VNI) == want_neigh

    assert await agent.call(
        table.program, ov, VNI, {}, list(want_fdb), {}, list(want_neigh)
    ) == []
    assert await agent.call(table.read_fdb, ov, VNI) == {}
    assert await agent.call(table.read_neighbours, ov, VNI) == {}


@pytest.mark.integration
async def test_windows_smaller_than_the_table(lab: KernelLab, monkeypatch):
    """Acks are matched across many send()s, a refusal lands on its entry."""
    _, _, ov, _ = await one_host_with_overlay(lab)
    # In this process (root namespace), not the agent's: monkeypatch reaches it.
    monkeypatch.setattr(rtnl_batch, "MAX_WINDOW", 7)
    with rtnl_batch.RtnlChannel(ov, 1.0) as channel:
        assert channel.window == 7
    fdb, neigh = _table(100)
    fdb = dict(list(fdb.items())[:50] + [("ff:ff:ff:ff:ff:ff", "10.99.0.2")]
               + list(fdb.items())[50:])
    errors = await table.program(ov, VNI, fdb, ["02:00:00:00:00:07"], neigh, ["10.1.1.1"])
    assert errors == [
        "fdb put ff:ff:ff:ff:ff:ff -> 10.99.0.2: Operation not supported (errno 95)"
    ]
    del fdb["ff:ff:ff:ff:ff:ff"]
    assert await table.read_fdb(ov, VNI) == fdb
    assert await table.read_neighbours(ov, VNI) == neigh


@pytest.mark.integration
async def test_nothing_to_do_and_missing_targets(lab: KernelLab):
    _, _, ov, _ = await one_host_with_overlay(lab)
    assert await table.program(ov, VNI, {}, [], {}, []) == []
    with pytest.raises(LookupError, match="vx4201"):
        await table.program(ov, 4201, {MAC: "10.99.0.2"}, [], {}, [])
    with pytest.raises(netns.NetnsNotFound):
        await table.program(f"{lab.tag}-none", VNI, {}, [], {}, [])
