"""Kernel-level labs for tests of agent/kernel: "machines" as network namespaces.

Each test builds its machines with a deploy/topology.py Topology tagged with
a random vxk<4 hex>: nodes `vxk....-h1`, veth cables between them. The code
under test runs in a worker process that has entered the machine's
namespace with setns(): that is the agent's "host namespace". Only the
network namespace is entered (not the mount namespace, as `ip netns exec`
would) so that the namespaces the agent creates under /run/netns are
visible to the test and to `ip netns exec`.

Every namespace carrying the tag (the nodes, and the `vxm-vxk....-h1-...`
ones the agent code made for a node) is deleted afterwards, with every
process in it, pass or fail (the `lab` fixture).
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import subprocess
from concurrent.futures import ProcessPoolExecutor

import pytest

from agent import names
from agent.kernel import netns, overlay, veth
from deploy.topology import Cable, Node, Topology, list_netns

VNI = 4200
CMD_TIMEOUT = 20


# --------------------------------------------------------------------------
# Running the code under test inside a "host" namespace


def _enter_netns(name: str) -> None:
    from pyroute2 import netns as pyroute2_netns

    pyroute2_netns.setns(name, flags=0)


def _run_coroutine(fn, args):
    return asyncio.run(fn(*args))


class Agent:
    """A worker process living in one host namespace, running kernel calls."""

    def __init__(self, host_netns: str):
        self.host_netns = host_netns
        self.pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_enter_netns,
            initargs=(host_netns,),
        )

    async def call(self, fn, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, _run_coroutine, fn, args)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------
# Commands in the lab (tests may use `ip`; the agent code may not)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}"
        )
    return proc


def in_ns(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *cmd, check=check)


def link_json(ns: str, ifname: str) -> dict | None:
    proc = in_ns(ns, "ip", "-d", "-j", "link", "show", "dev", ifname, check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def pings(ns: str, target: str, *extra: str) -> bool:
    proc = in_ns(ns, "ping", "-c1", "-W2", *extra, target, check=False)
    return proc.returncode == 0


def blocked(ns: str, target: str) -> bool:
    """No reply within a second (enough on a lab without any real delay)."""
    proc = in_ns(ns, "ping", "-c1", "-W1", target, check=False)
    return proc.returncode != 0


class KernelLab:
    """A test's machines (a Topology), the agent workers inside them and the
    commands it spawned there."""

    def __init__(self) -> None:
        self.topology = Topology.fresh("vxk")
        self.tag = self.topology.tag
        self.agents: list[Agent] = []
        self.procs: list[subprocess.Popen] = []

    def ns(self, suffix: str) -> str:
        """A new machine `<tag>-<suffix>`; its namespace name."""
        return self.topology.node(suffix).name

    def wire(self, ns_a: str, if_a: str, addr_a: str, ns_b: str, if_b: str,
             addr_b: str) -> None:
        """A veth "cable" created directly inside both namespaces ("" for no address)."""
        Cable.connect(Node(ns_a), if_a, Node(ns_b), if_b, a_address=addr_a, b_address=addr_b)

    def agent(self, host_netns: str) -> Agent:
        agent = Agent(host_netns)
        self.agents.append(agent)
        return agent

    def spawn(self, ns: str, *cmd: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for agent in self.agents:
            agent.close()
        self.topology.remove()


@pytest.fixture
def lab():
    lab = KernelLab()
    try:
        yield lab
    finally:
        lab.cleanup()
    leftovers = [n for n in list_netns() if lab.tag in n]
    assert not leftovers, f"namespaces left behind: {leftovers}"


def full_id(short: str) -> str:
    """A container id as the controller makes them (64 hex digits) from a short, readable one."""
    return short.ljust(64, "0")


def mac_for(ip: str) -> str:
    """Docker-style MAC derived from the IPv4 address."""
    return "02:42:" + ":".join(f"{int(o):02x}" for o in ip.split("."))


async def attach_container(agent: Agent, host: str, cid: str, ip: str,
                           prefixlen: int, mtu: int) -> veth.Interface:
    cid = full_id(cid)
    cns = names.container_netns(host, cid)
    await agent.call(netns.ensure_netns, cns)
    iface = veth.Interface(
        container_netns=cns,
        ifname="eth0",
        peer_netns=names.overlay_netns(host, VNI),
        peer_ifname=names.overlay_veth(cid, 0),
        bridge=names.BRIDGE,
        address=f"{ip}/{prefixlen}",
        mac=mac_for(ip),
        mtu=mtu,
        default_gateway=None,
    )
    await agent.call(veth.ensure_interface, iface)
    return iface


async def one_host_with_overlay(lab: KernelLab, prefixlen: int = 24):
    """A host wired to the switch as 10.99.0.1, with an overlay for VNI built by its agent."""
    h1 = lab.ns("h1")
    lab.wire(h1, "u1", "10.99.0.1/24", lab.ns("sw"), "u1p", "")
    agent = lab.agent(h1)
    ov = names.overlay_netns(h1, VNI)
    spec = overlay.OverlaySpec(
        vni=VNI, gateway="10.77.0.1", prefixlen=prefixlen, vtep_ip="10.99.0.1", mtu=1450
    )
    await agent.call(overlay.ensure_overlay, ov, spec)
    return h1, agent, ov, spec
