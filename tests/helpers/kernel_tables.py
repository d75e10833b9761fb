"""What a lab host's kernel holds for an overlay network, next to what it should hold.

Read with plain `bridge -j`/`ip -j` inside the network's namespace, so the
check does not trust the agent that programmed the entries. `controller`
picks the lab controller the desired side is asked through (a lab may run
several).
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

from deploy.lab import Lab
from deploy.topology import Node
from tests.helpers.lab_cli import network


@dataclass(frozen=True)
class Neighbour:
    mac: str                  # "" while the kernel has none (INCOMPLETE, FAILED)
    state: tuple[str, ...]    # e.g. ("PERMANENT",)


@dataclass(frozen=True)
class OverlayTable:
    """One overlay's table in one host's kernel."""
    # (mac, vtep) of the VXLAN device's own (`self`) entries, as listed: the
    # agent's. `master br0` entries are what the bridge learned from traffic,
    # and age out by themselves.
    fdb: list[tuple[str, str]] = field(default_factory=list)
    neighbours: dict[str, Neighbour] = field(default_factory=dict)   # by IP

    def macs(self) -> list[str]:
        return [mac for mac, _ in self.fdb]


def overlay_table(lab: Lab, host: int, vni: int) -> OverlayTable:
    """Host `host`'s table for VNI `vni`; empty while it has no namespace for it
    (no container of the host is on the network)."""
    node = Node(f"vxm-{lab.hosts[host].name}-ov{vni}")
    if not node.exists():
        return OverlayTable()
    fdb = _json(node, "bridge", "-j", "fdb", "show", "dev", f"vx{vni}")
    neigh = _json(node, "ip", "-j", "neigh", "show", "dev", f"vx{vni}")
    return OverlayTable(
        fdb=[(e["mac"], e.get("dst", "")) for e in fdb if "self" in e.get("flags", [])],
        neighbours={e["dst"]: Neighbour(e.get("lladdr", ""), tuple(e.get("state", ()))) for e in neigh})


def kernel_entries(lab: Lab, host: int, network_name: str = "blue", controller: int = 1) -> set[tuple[str, str, str]]:
    """(mac, ip, vtep) rows read back from the host's kernel, via the agent-independent `ip`/`bridge`."""
    table = overlay_table(lab, host, network(lab, network_name, controller)["vni"])
    vtep_of = {mac: vtep for mac, vtep in table.fdb if vtep}
    ip_of = {n.mac: ip for ip, n in table.neighbours.items() if n.mac}
    return {(mac, ip_of.get(mac, ""), vtep_of.get(mac, "")) for mac in set(vtep_of) | set(ip_of)}


def desired_entries(lab: Lab, host: int, network_name: str = "blue", without: set[str] = frozenset(),
                    controller: int = 1) -> set:
    endpoints = network(lab, network_name, controller)["endpoints"]
    vtep = {h.name: h.underlay_ip for h in lab.hosts}
    if not any(e["host"] == lab.hosts[host].name for e in endpoints):
        return set()
    return {(e["mac"], e["ip"], vtep[e["host"]]) for e in endpoints
            if e["host"] != lab.hosts[host].name and e["host"] not in without}


def tables_match(lab: Lab, network_name: str = "blue", controller: int = 1) -> bool:
    """Every host's kernel holds exactly its desired rows (for wait_for)."""
    return all(kernel_entries(lab, h, network_name, controller)
               == desired_entries(lab, h, network_name, controller=controller)
               for h in range(len(lab.hosts)))


def _json(node: Node, *argv: str) -> list[dict]:
    out = subprocess.run(["ip", "netns", "exec", node.name, *argv], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")
