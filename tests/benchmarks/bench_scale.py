"""Scale: a thousand agents, ten thousand endpoints on a thousand networks.

    .venv/bin/python -m tests.benchmarks.bench_scale [--steps 100,300,1000] [--updates 200]
                                                      [--processes 2] [--agent-endpoints 10000]

A private etcd, a controller process and simulated agents (sim_agents.py),
shared out over --processes processes (fleet.py's Fleets).

The layout: agents come in groups of ten, and each group has ten networks
of its own; every agent has one container on each of its group's networks.
So each network has ten endpoints on ten hosts, each agent holds ten
networks (a hundred table rows), and at 1,000 agents there are 10,000
endpoints on 1,000 networks. The endpoints are written straight to etcd
(preseed.py): the figures are the controller's fan-out, not the user API.

1. Update cost: at each step more agents connect, a hundred at a time
   (with their groups' networks and containers); then --updates endpoints are added, one etcd
   transaction each at a steady pace, to the networks of the first step's
   groups, so each update concerns ten agents however many are connected.
   We take the controller's CPU time per update (less its idle rate, measured
   just before: the agents' heartbeats and lease renewals) and the latency
   from the write's return (its etcd commit) to the last of the ten agents.
   The cost should follow the agents that care, not all agents.
2. Reconnect storm: every agent drops its stream and connects again at
   once, as a fresh agent wanting a whole snapshot; the time until the last
   one has its snapshot.
3. Memory: the controller's RSS with everything connected. An agent's
   memory is measured on one more simulated agent in a process of its own,
   with the real agent's view (agent/view.py) holding a network of
   --agent-endpoints endpoints: the agent's state without the kernel.

The harness's own CPU (the simulated agents' processes and this one) is
printed beside the controller's: on a machine of two cores it competes.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import time

from controller.keys import Keys
from proto import vxmesh_pb2 as pb
from tests.benchmarks import preseed
from tests.benchmarks.control_env import ControlPlane
from tests.benchmarks.figures import percentile, report
from tests.benchmarks.fleet import Fleet, Fleets
from tests.benchmarks.proc_stats import cpu_seconds, rss_kib
from tests.helpers.polling import wait_until

BENCH = "scale"
GROUP = 10                # agents per group, and networks per group
NETWORK_SUBNETS = ipaddress.IPv4Network("10.128.0.0/12")   # a /24 each
MEM, MEM_SUBNET = "mem", "10.100.0.0/16"
UPDATE_MARK = "/upd-"     # the timed endpoints' container names start with "upd-"
P50_TARGET_MS, P99_TARGET_MS = 20.0, 100.0
STORM_TARGET_S = 10.0
CONTROLLER_RSS_TARGET_MB = 500
AGENT_RSS_TARGET_MB = 100
UPDATE_RATE = 20.0       # updates written per second
# Whole seconds, so the agents' once-a-second heartbeats fall evenly into it.
IDLE_SECONDS = 3.0
SETTLE_SECONDS = 2.0     # for the agents that just connected to get their snapshots and anchors
# Ten times the agents (the interested ones fixed) may cost at most twice as
# much per update: what grows must be the agents that care.
GROWTH_TARGET = 2.0
PLACE_CONCURRENCY = 16
JOIN_BATCH = 100         # agents connecting at once while the fleet grows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="100,300,1000",
                        help="agents connected at each step, multiples of 10 (default 100,300,1000)")
    parser.add_argument("--updates", type=int, default=200, help="endpoint updates per step (default 200)")
    parser.add_argument("--processes", type=int, default=0,
                        help="processes of simulated agents (default: one per 500 agents)")
    parser.add_argument("--agent-endpoints", type=int, default=10_000,
                        help="table entries of the agent whose RSS is measured (default 10000)")
    args = parser.parse_args(argv)
    try:
        steps = sorted({int(s) for s in args.steps.split(",")})
    except ValueError:
        parser.error(f"--steps must be comma-separated numbers, not {args.steps!r}")
    if not steps or steps[0] < GROUP or steps[-1] > 1000 or any(s % GROUP for s in steps):
        parser.error(f"--steps must be multiples of {GROUP} from {GROUP} to 1000")
    if not 1 <= args.updates <= 5000 or not 1 <= args.agent_endpoints <= 60_000 or not 0 <= args.processes <= 8:
        parser.error("--updates 1..5000; --agent-endpoints 1..60000; --processes 0..8")
    processes = args.processes or max(1, (steps[-1] + 499) // 500)
    asyncio.run(_bench(steps, args.updates, processes, args.agent_endpoints))
    return 0


def agent_name(number: int) -> str:
    return f"sim{number:04d}"


def network_name(number: int) -> str:
    return f"n{number:04d}"


def network_subnet(number: int) -> str:
    return str(ipaddress.IPv4Network((int(NETWORK_SUBNETS.network_address) + 256 * number, 24)))


class _Scale:
    def __init__(self, cp: ControlPlane, fleets: Fleets):
        self.cp = cp
        self.fleets = fleets
        self.keys = Keys()
        self.agents: list[str] = []
        self.next_ip: dict[str, int] = {}
        self.vtep: dict[str, str] = {}
        self.updates = 0

    async def grow(self, total: int) -> tuple[float, float]:
        """Connect agents up to `total`, JOIN_BATCH at a time (as hosts join a
        cluster), each batch with its groups' networks and containers and
        settled before the next; the seconds until they were all connected,
        and until each had its table. All of them at once is the storm's case."""
        began = time.monotonic()
        connecting = 0.0
        while len(self.agents) < total:
            connecting += await self._join(min(total, len(self.agents) + JOIN_BATCH))
        return connecting, time.monotonic() - began

    async def _join(self, total: int) -> float:
        new = [agent_name(i) for i in range(len(self.agents), total)]
        groups = range(len(self.agents) // GROUP, total // GROUP)
        await self._create_networks([n for g in groups for n in range(g * GROUP, (g + 1) * GROUP)])
        began = time.monotonic()
        await self.fleets.start(new, kind="light", track=UPDATE_MARK, timeout=300)
        took = time.monotonic() - began
        self.agents += new
        self.vtep.update({h.name: h.vtep for h in (await self.cp.api.ListHosts(pb.Empty(), timeout=60)).hosts})
        gate = asyncio.Semaphore(PLACE_CONCURRENCY)

        async def anchors(network: int) -> None:
            hosts = [agent_name(network // GROUP * GROUP + k) for k in range(GROUP)]
            async with gate:
                await self._place(network, [(f"a{network:04d}-{h}", h) for h in hosts])

        await asyncio.gather(*(anchors(n) for g in groups for n in range(g * GROUP, (g + 1) * GROUP)))
        # Settled: every new agent has its whole table (the rows of a host show
        # once the liveness rule has it in the tables), so what comes next does
        # not share the controller with the joining.
        await self.fleets.wait_rows(new, GROUP * GROUP, timeout=300)
        return took

    async def _create_networks(self, numbers: list[int]) -> None:
        # One after the other: concurrent creations conflict on the network list and are refused.
        for number in numbers:
            await self.cp.api.CreateNetwork(pb.CreateNetworkRequest(
                name=network_name(number), subnet=network_subnet(number)), timeout=60)
            self.next_ip[network_name(number)] = 10

    async def _place(self, network: int, containers: list[tuple[str, str]]) -> None:
        """Stopped containers (name, host) on network number `network`, in one transaction."""
        name = network_name(network)
        subnet = ipaddress.IPv4Network(network_subnet(network))
        spots = []
        for container, host in containers:
            spots.append(preseed.Placement(container, host, self.vtep[host],
                                           str(subnet.network_address + self.next_ip[name])))
            self.next_ip[name] += 1
        await preseed.write_containers(self.cp.etcd, self.keys, name, spots)

    async def update_cost(self, first_groups: int, updates: int) -> tuple[float, float, float, float]:
        """(controller CPU ms per update, its idle CPU ms/s, p50 ms, p99 ms write -> last interested agent)."""
        pid = self.cp.controller_pid
        await asyncio.sleep(SETTLE_SECONDS)
        idle_start = cpu_seconds(pid)
        await asyncio.sleep(IDLE_SECONDS)
        idle_rate = (cpu_seconds(pid) - idle_start) / IDLE_SECONDS
        written: list[tuple[str, float]] = []
        cpu_start, started = cpu_seconds(pid), time.monotonic()
        for i in range(updates):
            await asyncio.sleep(max(0.0, started + i / UPDATE_RATE - time.monotonic()))
            # Round-robin over the first step's networks, each update from one of the network's own hosts.
            network = i % (first_groups * GROUP)
            host = agent_name(network // GROUP * GROUP + i // (first_groups * GROUP) % GROUP)
            container = f"upd-{self.updates:06d}"
            self.updates += 1
            await self._place(network, [(container, host)])
            written.append((self.keys.endpoint(network_name(network), container), time.monotonic()))
        watchers = self.agents[:first_groups * GROUP]
        seen = await self._wait_seen(watchers, [key for key, _ in written])
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_start - idle_rate * elapsed
        latencies = [(seen[key][1] - at) * 1000 for key, at in written]
        return max(cpu, 0.0) / updates * 1000, idle_rate * 1000, percentile(latencies, 50), percentile(latencies, 99)

    async def _wait_seen(self, watchers: list[str], keys: list[str], timeout: float = 120) -> dict:
        """Until each key has reached the GROUP agents of its network; what `seen` said then."""
        found: dict = {}

        async def reached() -> bool:
            found.clear()
            found.update(await self.fleets.seen(watchers))
            return all(found.get(key, (0, 0))[0] >= GROUP for key in keys)
        await wait_until(reached, timeout, f"updates to reach the {GROUP} agents of their networks", interval=0.1)
        return found


async def _bench(steps: list[int], updates: int, processes: int, agent_endpoints: int) -> None:
    print(f"scale: steps {steps} agents in groups of {GROUP} (each group {GROUP} networks of {GROUP} "
          f"endpoints), {updates} updates per step, {processes} processes of simulated agents", flush=True)
    harness_cpu = time.process_time()
    async with ControlPlane() as cp, Fleets(cp.socket, cp.work, processes) as fleets:
        scale = _Scale(cp, fleets)
        rows = []
        first_rss_mb = 0.0
        for total in steps:
            fleet_cpu = fleets.cpu_seconds()
            connect, settled = await scale.grow(total)
            cpu, idle, p50, p99 = await scale.update_cost(steps[0] // GROUP, updates)
            rows.append((total, cpu, idle, p50, p99, connect, settled, fleets.cpu_seconds() - fleet_cpu))
            first_rss_mb = first_rss_mb or rss_kib(cp.controller_pid) / 1024
            print(f"  step {total} agents: {cpu:.2f} ms CPU per update, p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                  flush=True)
        _print_table(rows)
        await _storm(cp, scale, rows[0])
        controller_mb = rss_kib(cp.controller_pid) / 1024
        endpoints = len(scale.agents) * GROUP
        report(BENCH, f"controller RSS, {len(scale.agents)} agents, {endpoints} endpoints on "
               f"{len(scale.agents)} networks", controller_mb, "MB", limit=CONTROLLER_RSS_TARGET_MB,
               baseline=first_rss_mb, baseline_name=f"at {steps[0]} agents")
        await _agent_memory(cp, scale, agent_endpoints)
        print(f"  harness CPU over the whole run: simulated agents {fleets.cpu_seconds():.1f} s "
              f"({processes} processes, RSS {fleets.rss_kib() / 1024:.0f} MB), the driver "
              f"{time.process_time() - harness_cpu:.1f} s", flush=True)


def _print_table(rows: list[tuple]) -> None:
    print("  update cost as agents are added (10 interested agents per update; controller CPU less its "
          "idle rate; latency etcd write -> last interested agent):", flush=True)
    print("  (join: seconds until the step's new agents were connected / had their whole tables)")
    print(f"  {'agents':>7} {'CPU ms/update':>14} {'idle CPU ms/s':>14} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'join s':>13} {'sim agents CPU s':>17}")
    for total, cpu, idle, p50, p99, connect, settled, fleet_cpu in rows:
        join = f"{connect:.1f}/{settled:.1f}"
        print(f"  {total:>7} {cpu:>14.2f} {idle:>14.0f} {p50:>8.1f} {p99:>8.1f} {join:>13} {fleet_cpu:>17.1f}",
              flush=True)
    first, last = rows[0], rows[-1]
    report(BENCH, f"p50 etcd commit -> the {GROUP} interested agents, {last[0]} agents", last[3], "ms",
           limit=P50_TARGET_MS, baseline=first[3], baseline_name=f"{first[0]} agents")
    report(BENCH, f"p99 etcd commit -> the {GROUP} interested agents, {last[0]} agents", last[4], "ms",
           limit=P99_TARGET_MS, baseline=first[4], baseline_name=f"{first[0]} agents")
    report(BENCH, f"CPU per update, {last[0]} agents / {first[0]} agents ({GROUP} interested)",
           last[1] / first[1] if first[1] > 0 else float("inf"), "x",
           limit=GROWTH_TARGET, baseline=last[0] / first[0], baseline_name="agents ratio")
    report(BENCH, f"controller idle CPU, {last[0]} agents connected", last[2], "ms/s",
           baseline=first[2], baseline_name=f"{first[0]} agents")


async def _storm(cp: ControlPlane, scale: _Scale, first_step: tuple) -> None:
    """Every agent reconnects at once, each asking for a whole snapshot; beside
    it, how long the first step's agents took to connect when they joined."""
    pid = cp.controller_pid
    cpu, fleet_cpu = cpu_seconds(pid), scale.fleets.cpu_seconds()
    took = await scale.fleets.restart(scale.agents, timeout=120)
    seconds = took["t_connected"] - took["t_start"]
    print(f"  reconnect storm: controller CPU {cpu_seconds(pid) - cpu:.1f} s, simulated agents CPU "
          f"{scale.fleets.cpu_seconds() - fleet_cpu:.1f} s", flush=True)
    report(BENCH, f"reconnect storm, all {len(scale.agents)} agents to their snapshots", seconds, "s",
           limit=STORM_TARGET_S, baseline=first_step[5], baseline_name=f"first {first_step[0]} joining")


async def _agent_memory(cp: ControlPlane, scale: _Scale, endpoints: int) -> None:
    """One agent of the real view's kind with a table of `endpoints` rows."""
    await cp.api.CreateNetwork(pb.CreateNetworkRequest(name=MEM, subnet=MEM_SUBNET), timeout=60)
    # The rows belong to the first group's hosts (their light views keep keys only).
    hosts = {h: scale.vtep[h] for h in scale.agents[:GROUP]}
    spots = preseed.placements("m", hosts, endpoints, MEM_SUBNET, 256)
    await preseed.write_containers(cp.etcd, scale.keys, MEM, spots)
    async with Fleet(cp.socket, cp.work / "memagent.log", number_base=90_000) as single:
        await single.start(["memagent"], kind="full")
        empty_mb = single.rss_kib() / 1024
        vteps = {h.name: h.vtep for h in (await cp.api.ListHosts(pb.Empty(), timeout=60)).hosts}
        own = preseed.placements("mine", {"memagent": vteps["memagent"]}, 1, MEM_SUBNET, 256 + endpoints)
        await preseed.write_containers(cp.etcd, scale.keys, MEM, own)
        await single.wait_endpoints(["memagent"], MEM, endpoints + 1, timeout=120)
        agent_mb = single.rss_kib() / 1024
    report(BENCH, f"agent RSS (simulated agent, real view) with {endpoints} table entries", agent_mb, "MB",
           limit=AGENT_RSS_TARGET_MB, baseline=empty_mb, baseline_name="same process before the table")


if __name__ == "__main__":
    raise SystemExit(main())
