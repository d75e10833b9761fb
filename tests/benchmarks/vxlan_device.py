"""A VXLAN device like an overlay's, in a throwaway namespace, for the benchmarks
that program a table into a kernel (bench_kernel, bench_snapshot).

The namespace is a deploy/topology.py node (`vxbench<hex>-t`), removed when
the `with` of `throwaway_node()` ends, also on failure.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from agent.names import vxlan_ifname
from deploy.topology import Topology
from tests.benchmarks.commands import sh

VNI = 4200
VXLAN = vxlan_ifname(VNI)


@contextlib.contextmanager
def throwaway_node() -> Iterator[str]:
    """A fresh namespace for one benchmark; its name."""
    with Topology.fresh("vxbench") as topology:
        yield topology.node("t").name


def fresh_vxlan(ns: str) -> None:
    """An empty table: the device is recreated (faster than flushing it)."""
    sh("ip", "-netns", ns, "link", "del", VXLAN, check=False)
    if sh("ip", "-netns", ns, "link", "show", "br0", check=False).returncode != 0:
        sh("ip", "-netns", ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-netns", ns, "link", "set", "br0", "up")
    # As an overlay's device: no learning, ARP answered from the neighbour table.
    sh("ip", "-netns", ns, "link", "add", VXLAN, "type", "vxlan", "id", str(VNI),
       "local", "10.99.0.1", "dstport", "4789", "nolearning", "proxy")
    sh("ip", "-netns", ns, "link", "set", VXLAN, "master", "br0", "up")


def write_batches(tmp: str, fdb: dict[str, str], neigh: dict[str, str]) -> tuple[str, str]:
    """`bridge -batch` and `ip -batch` files (in directory `tmp`) that program the table."""
    fdb_file, neigh_file = os.path.join(tmp, "fdb.batch"), os.path.join(tmp, "neigh.batch")
    with open(fdb_file, "w") as f:
        for mac, vtep in fdb.items():
            f.write(f"fdb replace {mac} dev {VXLAN} dst {vtep} self permanent\n")
    with open(neigh_file, "w") as f:
        for ip, mac in neigh.items():
            f.write(f"neigh replace {ip} lladdr {mac} nud permanent dev {VXLAN}\n")
    return fdb_file, neigh_file


def program_batches(ns: str, fdb_file: str, neigh_file: str) -> None:
    """iproute2's batch mode, the baseline: one netlink request and acknowledgement per line, in C."""
    sh("bridge", "-netns", ns, "-batch", fdb_file)
    sh("ip", "-netns", ns, "-batch", neigh_file)
