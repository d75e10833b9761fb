"""Underlay plumbing for the lab: namespaces, the fabric bridge, veth cables.

This is lab tooling that runs a few dozen commands once per lab, so it drives
`ip` with argv lists: each step reads like the command an operator would type,
and the speed of raw netlink would buy nothing here.

Nothing in this module touches the root network namespace: every link is
created inside a lab namespace (`ip -n`) with its peer born directly in the
other lab namespace, so no temporary names can collide between labs.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from deploy.lab_errors import LabError

NETNS_DIR = Path("/run/netns")
FABRIC_BRIDGE = "fabric"
UNDERLAY_PREFIXLEN = 24
HOST_UPLINK = "eth0"
IP_TIMEOUT = 10


class TopologyError(LabError):
    """An `ip` command failed while building or dismantling the lab."""


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT)
    if check and proc.returncode != 0:
        raise TopologyError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc


def list_netns() -> list[str]:
    # `ip netns list` only reads this directory; reading it directly avoids a
    # process per call during teardown polling.
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def create_netns(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def delete_netns(name: str) -> None:
    if name in list_netns():
        ip("netns", "delete", name)


def netns_pids(name: str) -> list[int]:
    proc = ip("netns", "pids", name, check=False)
    if proc.returncode != 0:
        if name not in list_netns():
            return []  # deleted meanwhile: nothing left to find
        raise TopologyError(f"cannot list processes of netns {name}: {proc.stderr.strip()}")
    return [int(pid) for pid in proc.stdout.split()]


def create_fabric(netns: str) -> None:
    """The underlay switch: a bridge with no address of its own."""
    create_netns(netns)
    # Snooping without an IGMP querier would start dropping multicast after
    # a timeout; a plain switch that floods is what the overlay expects.
    ip("link", "add", FABRIC_BRIDGE, "type", "bridge", "mcast_snooping", "0", netns=netns)
    ip("link", "set", FABRIC_BRIDGE, "up", netns=netns)


def cable_host(fabric_ns: str, port: str, host_ns: str, address: str, mtu: int) -> None:
    """Plug `host_ns` into the fabric: its `eth0` gets `address`/24."""
    ip("link", "add", port, "mtu", str(mtu), "type", "veth",
       "peer", "name", HOST_UPLINK, "mtu", str(mtu), "netns", host_ns, netns=fabric_ns)
    ip("link", "set", port, "master", FABRIC_BRIDGE, "up", netns=fabric_ns)
    ip("addr", "add", f"{address}/{UNDERLAY_PREFIXLEN}", "dev", HOST_UPLINK, netns=host_ns)
    ip("link", "set", HOST_UPLINK, "up", netns=host_ns)


def listening_on(netns: str, port: int) -> bool:
    """True once some process in `netns` listens on TCP `port`."""
    proc = subprocess.run(["ss", "-N", netns, "-Hltn", f"sport = :{port}"],
                          capture_output=True, text=True, timeout=IP_TIMEOUT)
    return proc.returncode == 0 and proc.stdout.strip() != ""
