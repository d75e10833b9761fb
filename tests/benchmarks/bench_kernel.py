"""How fast vxmesh programs a VXLAN table, against iproute2 in the same run.

    .venv/bin/python -m tests.benchmarks.bench_kernel [--entries N] [--runs R]

Builds one network namespace (vxbench<hex>-t, a deploy/topology.py node)
holding a bridge and a VXLAN device like an overlay's, then programs N FDB + N neighbour entries with:
  (a) `bridge -batch` + `ip -batch`: the baseline, one netlink request
      and acknowledgement per line, written in C;
  (b) vxmesh's table.program;
  (c) pyroute2 NetlinkRequest batches: how table.program did it before,
      kept here so the gain is measured rather than remembered.
Each method gets the best of R runs, each on a freshly created (so empty)
device, and every run is checked by reading the table back. The
namespace is deleted at the end, also on failure. Needs root.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nlsocket import NetlinkRequest
from pyroute2.netlink.rtnl import RTM_NEWNEIGH
from pyroute2.netlink.rtnl.ndmsg import NTF_SELF, NUD_NOARP, NUD_PERMANENT, ndmsg

from agent.kernel import table
from agent.kernel.netns import iproute
from tests.benchmarks import figures
from tests.benchmarks.vxlan_device import VNI, VXLAN, fresh_vxlan, program_batches, throwaway_node, write_batches

TARGET = 20_000  # entries/s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000,
                        help="FDB entries, and as many neighbour entries (default 10000)")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args(argv)
    if not 1 <= args.entries <= 1 << 16:
        parser.error("--entries must be between 1 and 65536")
    asyncio.run(_bench(args.entries, args.runs))
    return 0


async def _bench(n: int, runs: int) -> None:
    fdb, neigh = _entries(n)
    with throwaway_node() as ns:
        with tempfile.TemporaryDirectory(prefix="vxbench") as tmp:
            fdb_file, neigh_file = write_batches(tmp, fdb, neigh)

            async def iproute2() -> None:
                program_batches(ns, fdb_file, neigh_file)

            async def vxmesh() -> None:
                errors = await table.program(ns, VNI, fdb, [], neigh, [])
                assert errors == [], errors[:3]

            async def pyroute2() -> None:
                await _pyroute2_program(ns, fdb, neigh)

            methods: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("bridge -batch + ip -batch", iproute2),
                ("vxmesh table.program", vxmesh),
                ("pyroute2 (previous program)", pyroute2),
            ]
            best = {}
            for label, method in methods:
                best[label] = await _best_of(runs, ns, method, fdb, neigh)
            read = await _best_read(runs, ns, fdb, neigh)
    _report(n, runs, best, read)


async def _best_of(runs: int, ns: str, method: Callable[[], Awaitable[None]],
                   fdb: dict[str, str], neigh: dict[str, str]) -> float:
    best = float("inf")
    for _ in range(runs):
        fresh_vxlan(ns)
        started = time.perf_counter()
        await method()
        best = min(best, time.perf_counter() - started)
        # Every method must have done the whole job for the figures to compare.
        assert await table.read_fdb(ns, VNI) == fdb
        assert await table.read_neighbours(ns, VNI) == neigh
    return best


async def _best_read(runs: int, ns: str, fdb: dict[str, str], neigh: dict[str, str]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        got = (await table.read_fdb(ns, VNI), await table.read_neighbours(ns, VNI))
        best = min(best, time.perf_counter() - started)
        assert got == (fdb, neigh)
    return best


def _report(n: int, runs: int, best: dict[str, float], read: float) -> None:
    total = 2 * n
    labels = list(best)
    baseline = total / best[labels[0]]
    print(f"kernel table programming: {n} FDB + {n} neighbour entries, best of {runs}")
    for label in labels:
        rate = total / best[label]
        ratio = "baseline" if label == labels[0] else f"{rate / baseline:.2f}x baseline"
        print(f"  {label:<28} {best[label]:7.3f} s {rate:>10,.0f} entries/s  {ratio}")
    rate = total / best[labels[1]]
    figures.report("kernel", f"{labels[1]} rate", rate, "entries/s", limit=TARGET, higher_is_better=True,
                   baseline=baseline, baseline_name=labels[0])
    print(f"  vxmesh/baseline ratio {rate / baseline:.2f}")
    print(f"  vxmesh read_fdb + read_neighbours: {read:.3f} s "
          f"{total / read:,.0f} entries/s")


def _entries(n: int) -> tuple[dict[str, str], dict[str, str]]:
    """n remote containers: MAC -> one of 250 VTEPs, and IP -> MAC."""
    fdb, neigh = {}, {}
    for i in range(n):
        ip = f"10.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
        mac = "02:42:" + ":".join(f"{int(o):02x}" for o in ip.split("."))
        fdb[mac] = f"10.99.{i % 250}.{1 + (i // 250) % 250}"
        neigh[ip] = mac
    return fdb, neigh


async def _pyroute2_program(ns: str, fdb: dict[str, str], neigh: dict[str, str]) -> None:
    """The previous table.program: pyroute2-encoded requests, 256 per send()."""
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    async with iproute(ns) as ipr:
        (link,) = await ipr.link("get", ifname=VXLAN)
        index = link["index"]
        msgs = []
        for mac, vtep in fdb.items():
            msg = _ndmsg(7, index, NUD_PERMANENT | NUD_NOARP, NTF_SELF)
            msg["attrs"] = [("NDA_LLADDR", mac), ("NDA_DST", vtep)]
            msgs.append(msg)
        for ip, mac in neigh.items():
            msg = _ndmsg(2, index, NUD_PERMANENT, 0)
            msg["attrs"] = [("NDA_DST", ip), ("NDA_LLADDR", mac)]
            msgs.append(msg)
        for start in range(0, len(msgs), 256):
            requests = [
                NetlinkRequest(ipr, msg, msg_type=RTM_NEWNEIGH, msg_flags=flags)
                for msg in msgs[start : start + 256]
            ]
            for request in requests:
                await request.prepare()
            ipr.send(b"".join(bytes(request.msg.data) for request in requests))
            for request in requests:
                try:
                    async for _ in request.response():
                        pass
                except NetlinkError as e:
                    raise AssertionError(f"pyroute2 path: {e}") from None


def _ndmsg(family: int, index: int, state: int, flags: int) -> ndmsg:
    msg = ndmsg()
    msg["family"], msg["ifindex"], msg["state"] = family, index, state
    msg["flags"], msg["ndm_type"] = flags, 0
    return msg


if __name__ == "__main__":
    raise SystemExit(main())
