"""What the lab benchmarks share: a lab of their own, commands, and watching a host's kernel table for a new endpoint.

Each benchmark builds its own lab under a random `vxbench<hex>` prefix (so
it never meets `make lab`'s lab, a test's `vxt` lab or another benchmark's)
and always tears it down, also when it fails or is interrupted.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from agent import names
from agent.kernel import table
from agent.kernel.netns import NetnsNotFound
from deploy.lab import Lab, LabHost
from deploy.lab_processes import REPO_ROOT

LAB_PREFIX = "vxbench"
CMD_TIMEOUT = 120
# How often the kernel table is read while waiting for an entry: often enough
# for millisecond figures, rarely enough not to steal a core from the agents.
TABLE_POLL_SECONDS = 0.002


def new_bench_prefix() -> str:
    for _ in range(20):
        prefix = f"{LAB_PREFIX}{secrets.token_hex(2)}"
        if not Lab(prefix).exists():
            return prefix
    raise RuntimeError("20 random benchmark lab prefixes were all taken: "
                       f"clean up with `python -m deploy.lab down --prefix {LAB_PREFIX}....`")


@contextlib.contextmanager
def bench_lab(hosts: int) -> Iterator[Lab]:
    """A running lab of `hosts` agents, removed on the way out whatever happens."""
    lab = Lab(new_bench_prefix(), hosts=hosts)
    try:
        lab.up()  # tears down its own half-built lab when it fails
        yield lab
    finally:
        lab.down()


def sh(*argv: str, check: bool = True, timeout: float = CMD_TIMEOUT) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc


def vxmesh_argv(lab: Lab, *args: str) -> list[str]:
    """The installed `vxmesh` command against the lab's controller: what a user runs."""
    return [str(lab.vxmesh_program()), "--controller", f"unix://{lab.controller_socket}", *args]


def container_id(lab: Lab, name: str) -> str:
    return json.loads(lab.cli("inspect", name).stdout)["id"]


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


def overlay_vni(lab: Lab, network: str) -> int:
    return int(json.loads(lab.cli("network", "inspect", network).stdout)["vni"])
