"""Namespace "machines" on one Linux host: nodes, cables and switches named from one tag.

The namespace lab (deploy/lab.py), the kernel-level test labs
(tests/helpers/kernel_lab.py), the runtime tests and the benchmarks all
build their machines from these pieces, so they name and remove things one
way:

    Node       a network namespace with `lo` up: one machine
    Cable      a veth pair between two nodes, each end born in its node
    Switch     a node holding a bridge with no address; `plug` cables a node to it
    Topology   the nodes of one tag, made and removed together

The tag rule: a topology names its nodes `<tag>-<name>`, and a vxmesh agent
running on a node names the namespaces it makes after its host name
(`vxm-<host>-...`, agent/names.py), which a lab takes from the node, so
those are `vxm-<tag>-...`. Everything carrying the tag is found by name in
/run/netns, so `Topology.remove()` works from a fresh process too, and it
kills every process still inside before deleting the namespaces. Tags hold
no "-", so one tag's names are never another's (`vxlab-h1` is not
`vxlab2`'s), and a tag is never `vxm`, whose names would be every agent's.
Whoever builds with a topology removes it on every way out, failure too.

Nothing here touches the root network namespace: a cable is created inside
one node (`ip -n`) with its peer born directly in the other, under its
final name, so no temporary name can collide between labs.

This is tooling that runs a few dozen commands per lab, so it drives `ip`
with argv lists: each step reads like the command an operator would type,
and the speed of raw netlink would buy nothing here.
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from deploy.lab_errors import LabError

NETNS_DIR = Path("/run/netns")
IP_TIMEOUT = 10
TAG_RE = re.compile(r"^[a-z][a-z0-9]{1,15}$")
AGENT_NETNS_PREFIX = "vxm-"       # agent/names.py: vxm-<host>-...
KILL_TIMEOUT = 10.0


class TopologyError(LabError):
    """An `ip` command failed while building or dismantling namespaces."""


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


def netns_pids(name: str) -> list[int]:
    """The processes whose network namespace is `name` (none once it is gone)."""
    proc = ip("netns", "pids", name, check=False)
    if proc.returncode != 0:
        if name not in list_netns():
            return []  # deleted meanwhile: nothing left to find
        raise TopologyError(f"cannot list processes of netns {name}: {proc.stderr.strip()}")
    return [int(pid) for pid in proc.stdout.split()]


def sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone: that is what we wanted


def kill_processes(namespaces: Callable[[], Iterable[str]], timeout: float = KILL_TIMEOUT) -> None:
    """SIGKILL everything in the namespaces `namespaces()` lists until none is left.

    Lists again on every round: a dying agent may still have forked, or made
    one more namespace, or a process may be between fork and exec, when the
    first list was taken.
    """
    deadline = time.monotonic() + timeout
    while True:
        listed = set(list_netns())
        present = [ns for ns in namespaces() if ns in listed]
        pids = {pid for ns in present for pid in netns_pids(ns)}
        if not pids:
            return
        if time.monotonic() > deadline:
            raise TopologyError(f"processes {sorted(pids)} in {present} survived SIGKILL for {timeout}s")
        for pid in pids:
            sigkill(pid)
        time.sleep(0.05)


def is_tag(tag: str) -> bool:
    """A name no other tag's names can start with, and no agent's either."""
    return bool(TAG_RE.match(tag)) and tag != AGENT_NETNS_PREFIX.rstrip("-")


@dataclass(frozen=True)
class Node:
    """One machine: the network namespace `name` (under /run/netns)."""
    name: str

    @classmethod
    def create(cls, name: str) -> Node:
        ip("netns", "add", name)
        node = cls(name)
        node.ip("link", "set", "lo", "up")
        return node

    @property
    def path(self) -> str:
        return str(NETNS_DIR / self.name)

    def exists(self) -> bool:
        return self.name in list_netns()

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`ip ARGS` acting inside this node."""
        return ip(*args, netns=self.name, check=check)

    def configure(self, ifname: str, address: str | None = None) -> None:
        """Give `ifname` its `address` (CIDR), if any, and bring it up."""
        if address:
            self.ip("addr", "add", address, "dev", ifname)
        self.ip("link", "set", ifname, "up")

    def argv(self, *argv: str) -> list[str]:
        """`argv` run in this node's network namespace only: unlike `ip netns
        exec` it keeps the machine's mount namespace, so the namespaces an agent
        creates (bind mounts under /run/netns) stay visible to everyone else,
        and it execs in place, so the pid a caller gets is the program's."""
        return ["nsenter", f"--net={self.path}", *argv]

    def pids(self) -> list[int]:
        return netns_pids(self.name)

    def kill_processes(self) -> None:
        kill_processes(lambda: [self.name])

    def listening_on(self, port: int) -> bool:
        """True once some process in this node listens on TCP `port`."""
        proc = subprocess.run(["ss", "-N", self.name, "-Hltn", f"sport = :{port}"],
                              capture_output=True, text=True, timeout=IP_TIMEOUT)
        return proc.returncode == 0 and proc.stdout.strip() != ""

    def remove(self) -> None:
        """Delete the namespace (its cables go with it); nothing if it is gone."""
        if self.exists():
            ip("netns", "delete", self.name)


@dataclass(frozen=True)
class Cable:
    """A veth pair: `a_ifname` in node `a`, `b_ifname` in node `b`."""
    a: Node
    a_ifname: str
    b: Node
    b_ifname: str

    @classmethod
    def connect(cls, a: Node, a_ifname: str, b: Node, b_ifname: str, *, a_address: str | None = None,
                b_address: str | None = None, mtu: int | None = None) -> Cable:
        """Both ends created at once in their nodes, addressed (CIDR) where given, and up."""
        mtu_args = ("mtu", str(mtu)) if mtu else ()
        a.ip("link", "add", a_ifname, *mtu_args, "type", "veth",
             "peer", "name", b_ifname, *mtu_args, "netns", b.name)
        a.configure(a_ifname, a_address)
        b.configure(b_ifname, b_address)
        return cls(a, a_ifname, b, b_ifname)


@dataclass(frozen=True)
class Switch:
    """A node holding the bridge `bridge`, which has no address: a plain switch."""
    node: Node
    bridge: str

    @classmethod
    def create(cls, node: Node, bridge: str) -> Switch:
        # Snooping without an IGMP querier would start dropping multicast after
        # a timeout; a plain switch that floods is what an overlay expects.
        node.ip("link", "add", bridge, "type", "bridge", "mcast_snooping", "0")
        node.ip("link", "set", bridge, "up")
        return cls(node, bridge)

    def plug(self, node: Node, port: str, ifname: str, address: str | None = None,
             mtu: int | None = None) -> Cable:
        """Cable `node`'s `ifname` (given `address`, CIDR) to the switch port `port`."""
        cable = Cable.connect(self.node, port, node, ifname, b_address=address, mtu=mtu)
        self.node.ip("link", "set", port, "master", self.bridge)
        return cable


class Topology:
    """The nodes named `<tag>-...`, and what agents made for them, as one thing to build and remove.

    `adopt` claims namespaces of other names as the topology's too (`make
    lab` names its hosts h1..hN, so its agents' namespaces are vxm-h1-...).
    As a context manager it removes everything on the way out.
    """

    def __init__(self, tag: str, adopt: Callable[[str], bool] | None = None) -> None:
        if not is_tag(tag):
            raise ValueError(f"topology tag {tag!r} must be 2-16 lowercase letters/digits starting with a letter, "
                             f"and not {AGENT_NETNS_PREFIX.rstrip('-')!r}")
        self.tag = tag
        self._adopt = adopt

    @classmethod
    def fresh(cls, stem: str) -> Topology:
        """A topology under a random tag `<stem><4 hex>` that nothing present carries."""
        for _ in range(20):
            topology = cls(f"{stem}{secrets.token_hex(2)}")
            if not topology.owned():
                return topology
        raise TopologyError(f"20 random tags {stem}<4 hex> were all taken: remove what is left of them")

    def name(self, suffix: str) -> str:
        return f"{self.tag}-{suffix}"

    def node(self, suffix: str) -> Node:
        return Node.create(self.name(suffix))

    def switch(self, suffix: str, bridge: str) -> Switch:
        return Switch.create(self.node(suffix), bridge)

    def carries_tag(self, netns: str) -> bool:
        return (netns.startswith((f"{self.tag}-", f"{AGENT_NETNS_PREFIX}{self.tag}-"))
                or (self._adopt is not None and self._adopt(netns)))

    def owned(self) -> list[str]:
        """The topology's namespaces as they exist now, whoever made them."""
        return [ns for ns in list_netns() if self.carries_tag(ns)]

    def remove(self) -> None:
        """Kill every process in the topology's namespaces, then delete them all;
        fails naming what is left, after trying every one."""
        kill_processes(self.owned)
        errors = []
        for netns in self.owned():
            proc = ip("netns", "delete", netns, check=False)
            if proc.returncode != 0 and netns in list_netns():
                errors.append(f"{netns}: {proc.stderr.strip()}")
        left = self.owned()
        if left:
            raise TopologyError(f"namespaces left behind: {left}" + (f" ({'; '.join(errors)})" if errors else ""))

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
