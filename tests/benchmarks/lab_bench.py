"""What the lab benchmarks share: a lab of their own, the `vxmesh` command, and watching a host's kernel table for a new endpoint.

Each benchmark builds its own lab under a random `vxbench<hex>` prefix (so
it never meets `make lab`'s lab, a test's `vxt` lab or another benchmark's)
and always tears it down, also when it fails or is interrupted.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from agent import names
from agent.kernel import table
from agent.kernel.netns import NetnsNotFound
from deploy.lab import Lab, LabHost, unused_prefix
from proto import timing

LAB_PREFIX = "vxbench"
# How often the kernel table is read while waiting for an entry: often enough
# for millisecond figures, rarely enough not to steal a core from the agents.
TABLE_POLL_SECONDS = 0.002


@contextlib.contextmanager
def bench_lab(hosts: int) -> Iterator[Lab]:
    """A lab of `hosts` agents under a fresh `vxbench<hex>` prefix, with the busybox
    image in its registry: `with bench_lab(2) as lab:` brings it up and removes it
    on the way out, whatever happens."""
    with Lab(unused_prefix(LAB_PREFIX), hosts=hosts) as lab:
        lab.load_busybox()
        yield lab


def vxmesh_argv(lab: Lab, *args: str) -> list[str]:
    """The installed `vxmesh` command against the lab's controller: what a user runs."""
    return [str(lab.vxmesh_program()), "--controller", f"unix://{lab.controller_socket}", *args]


def timing_events(lab: Lab, role: str, kind: str) -> list[dict]:
    """The `kind` timing events (proto/timing.py) the lab process `role` logged, in order."""
    return list(timing.events(lab.log_path(role).read_text(errors="replace").splitlines(), kind))


@dataclass
class TableEntry:
    ip: str
    mac: str
    vtep: str
    seen_at: float     # wall clock, when a read first showed both entries


async def read_table(host: LabHost, vni: int) -> tuple[dict[str, str], dict[str, str]]:
    """(ip -> mac, mac -> vtep) as `host`'s kernel holds them for the overlay `vni`."""
    netns = names.overlay_netns(host.name, vni)
    return await table.read_neighbours(netns, vni), await table.read_fdb(netns, vni)


async def wait_new_entries(host: LabHost, vni: int, known: set[str], count: int,
                           timeout: float) -> list[TableEntry]:
    """Poll `host`'s kernel until `count` IPs outside `known` have both their
    neighbour and their FDB entry; return them with when each was first seen."""
    found: dict[str, TableEntry] = {}
    deadline = time.monotonic() + timeout
    while len(found) < count:
        try:
            neigh, fdb = await read_table(host, vni)
        except NetnsNotFound:
            neigh, fdb = {}, {}  # the overlay namespace is not there yet
        now = time.time()
        for ip, mac in neigh.items():
            if ip not in known and ip not in found and mac in fdb:
                found[ip] = TableEntry(ip, mac, fdb[mac], now)
        if time.monotonic() > deadline:
            raise TimeoutError(f"host {host.name}: {len(found)} of {count} new entries in VNI {vni} "
                               f"after {timeout}s")
        await asyncio.sleep(TABLE_POLL_SECONDS)
    return list(found.values())
