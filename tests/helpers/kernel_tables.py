"""What a lab host's kernel holds for an overlay network, next to what it should hold.

Read with plain `bridge`/`ip` inside the network's namespace, so the check
does not trust the agent that programmed the entries. `controller` picks the
lab controller the desired side is asked through (a lab may run several).
"""
from __future__ import annotations

import json
import subprocess

from deploy.lab import Lab


def kernel_entries(lab: Lab, host: int, network: str = "blue", controller: int = 1) -> set[tuple[str, str, str]]:
    """(mac, ip, vtep) rows read back from the host's kernel, via the agent-independent `ip`/`bridge`."""
    vni = json.loads(lab.cli("network", "inspect", network, controller=controller).stdout)["vni"]
    netns = f"vxm-{lab.hosts[host].name}-ov{vni}"
    if netns not in _out(["ip", "netns", "list"]).split():
        return set()  # no container of this host on the network: no table at all
    fdb = _out(["ip", "netns", "exec", netns, "bridge", "-j", "fdb", "show", "dev", f"vx{vni}"])
    neigh = _out(["ip", "netns", "exec", netns, "ip", "-j", "neigh", "show", "dev", f"vx{vni}"])
    vtep_of = {e["mac"]: e.get("dst", "") for e in json.loads(fdb or "[]")
               if "self" in e.get("flags", []) and e.get("dst")}
    ip_of = {e["lladdr"]: e["dst"] for e in json.loads(neigh or "[]") if "lladdr" in e}
    return {(mac, ip_of.get(mac, ""), vtep_of.get(mac, "")) for mac in set(vtep_of) | set(ip_of)}


def desired_entries(lab: Lab, host: int, network: str = "blue", without: set[str] = frozenset(),
                    controller: int = 1) -> set:
    endpoints = json.loads(lab.cli("network", "inspect", network, controller=controller).stdout)["endpoints"]
    vtep = {h.name: h.underlay_ip for h in lab.hosts}
    if not any(e["host"] == lab.hosts[host].name for e in endpoints):
        return set()
    return {(e["mac"], e["ip"], vtep[e["host"]]) for e in endpoints
            if e["host"] != lab.hosts[host].name and e["host"] not in without}


def tables_match(lab: Lab, network: str = "blue", controller: int = 1) -> bool:
    """Every host's kernel holds exactly its desired rows (for wait_for)."""
    return all(kernel_entries(lab, h, network, controller) == desired_entries(lab, h, network, controller=controller)
               for h in range(len(lab.hosts)))


def _out(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
