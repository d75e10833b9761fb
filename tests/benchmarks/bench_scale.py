"""Scale and memory: update cost as agents are added, controller and agent RSS.

    .venv/bin/python -m tests.benchmarks.bench_scale [--steps 10,25,50,100] [--interested 10]
                                                      [--updates 200] [--endpoints 10000]

A private etcd, a controller process and simulated agents (sim_agents.py).
1. Update cost: --interested agents take part in the network "hot", every
   other agent in "cold". At each step more agents connect, then --updates
   endpoints are added to "hot" one etcd transaction each, at a steady pace;
   we take the controller's CPU time per update (less its idle rate, measured
   just before, which is mostly the agents' heartbeats) and the latency
   from the write to the last interested agent. The cost should follow the
   agents that care, not all agents; a last row has every agent take part.
2. Memory: "hot" grows to --endpoints endpoints spread over all the agents,
   every agent receives them all, and the controller's RSS is read. An
   agent's memory is measured on one more simulated agent in a process of
   its own, with the real agent's view (agent/view.py: every record decoded
   and kept) holding the whole table: the agent's state without the kernel.
The endpoints are written straight to etcd (preseed.py), so the figures are
the controller's fan-out, not the user API.
"""
from __future__ import annotations

import argparse
import asyncio
import time

from controller.keys import Keys
from proto import vxmesh_pb2 as pb
from tests.benchmarks import preseed
from tests.benchmarks.control_env import ControlPlane
from tests.benchmarks.figures import percentile, report
from tests.benchmarks.fleet import Fleet
from tests.benchmarks.proc_stats import cpu_seconds, rss_kib
from tests.helpers.polling import wait_until

BENCH = "scale"
HOT, HOT_SUBNET = "hot", "10.128.0.0/16"
COLD, COLD_SUBNET = "cold", "10.129.0.0/16"
CONTROLLER_RSS_TARGET_MB = 300
AGENT_RSS_TARGET_MB = 100
UPDATE_RATE = 20.0       # updates written per second
# Whole seconds, so the agents' once-a-second heartbeats fall evenly into it.
IDLE_SECONDS = 3.0
SETTLE_SECONDS = 2.0     # for the agents that just connected to get their snapshots and anchors
# With the interested agents fixed, ten times the agents may cost at most
# twice as much per update: what grows must be the agents that care.
GROWTH_TARGET = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="10,25,50,100", help="agents connected at each step (default 10,25,50,100)")
    parser.add_argument("--interested", type=int, default=10, help="agents in the updated network (default 10)")
    parser.add_argument("--updates", type=int, default=200, help="endpoint updates per step (default 200)")
    parser.add_argument("--endpoints", type=int, default=10_000, help="endpoints for the memory figures (default 10000)")
    args = parser.parse_args(argv)
    try:
        steps = sorted({int(s) for s in args.steps.split(",")})
    except ValueError:
        parser.error(f"--steps must be comma-separated numbers, not {args.steps!r}")
    if not steps or steps[0] < args.interested or args.interested < 1 or steps[-1] > 1000:
        parser.error("--steps must be between --interested (>= 1) and 1000")
    if not 1 <= args.updates <= 5000 or not steps[-1] <= args.endpoints <= 60_000:
        parser.error("--updates 1..5000; --endpoints from the largest step up to 60000")
    asyncio.run(_bench(steps, args.interested, args.updates, args.endpoints))
    return 0


class _Scale:
    def __init__(self, cp: ControlPlane, fleet: Fleet):
        self.cp = cp
        self.fleet = fleet
        self.keys = Keys()
        self.agents: list[str] = []
        self.next_ip = {HOT: 256, COLD: 256}
        self.names = 0

    async def vteps(self) -> dict[str, str]:
        return {h.name: h.vtep for h in (await self.cp.api.ListHosts(pb.Empty(), timeout=30)).hosts}

    async def place(self, network: str, hosts: list[str], per_txn: bool = False) -> list[tuple[str, float]]:
        """One stopped container on `network` per host; (endpoint key, write returned) for each."""
        vteps = await self.vteps()
        subnet = HOT_SUBNET if network == HOT else COLD_SUBNET
        spots = preseed.placements(f"{network}{self.names:06d}", {h: vteps[h] for h in hosts}, len(hosts),
                                   subnet, self.next_ip[network])
        self.names += 1
        self.next_ip[network] += len(hosts)
        if not per_txn:
            await preseed.write_containers(self.cp.etcd, self.keys, network, spots)
            return []
        written = []
        began = time.monotonic()
        for i, spot in enumerate(spots):
            await asyncio.sleep(max(0.0, began + i / UPDATE_RATE - time.monotonic()))
            await preseed.write_containers(self.cp.etcd, self.keys, network, [spot])
            written.append((self.keys.endpoint(network, spot.name), time.monotonic()))
        return written

    async def grow(self, total: int, interested: int) -> None:
        new = [f"sim{i:03d}" for i in range(len(self.agents), total)]
        await self.fleet.start(new, kind="light", track=self.keys.endpoints(HOT))
        self.agents += new
        hot = [h for h in new if int(h[3:]) < interested]
        cold = [h for h in new if int(h[3:]) >= interested]
        if hot:
            await self.place(HOT, hot)
        if cold:
            await self.place(COLD, cold)

    async def update_cost(self, watchers: list[str], updates: int) -> tuple[float, float, float]:
        """(controller CPU ms per update, p50 ms, p99 ms write -> last of `watchers`)."""
        pid = self.cp.controller_pid
        await asyncio.sleep(SETTLE_SECONDS)
        idle_start = cpu_seconds(pid)
        await asyncio.sleep(IDLE_SECONDS)
        idle_rate = (cpu_seconds(pid) - idle_start) / IDLE_SECONDS
        have = (await self.fleet.call("seen", names=watchers))["seen"]
        before = len([k for k, (count, _) in have.items() if count == len(watchers)])
        hosts = [watchers[i % len(watchers)] for i in range(updates)]
        cpu_start, started = cpu_seconds(pid), time.monotonic()
        written = await self.place(HOT, hosts, per_txn=True)
        await self._wait_seen(watchers, before + updates)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_start - idle_rate * elapsed
        seen = (await self.fleet.call("seen", names=watchers))["seen"]
        latencies = [(seen[key][1] - at) * 1000 for key, at in written]
        return max(cpu, 0.0) / updates * 1000, percentile(latencies, 50), percentile(latencies, 99)

    async def _wait_seen(self, watchers: list[str], count: int, timeout: float = 120) -> None:
        async def reached() -> bool:
            seen = (await self.fleet.call("seen", names=watchers))["seen"]
            return sum(1 for c, _ in seen.values() if c == len(watchers)) >= count
        await wait_until(reached, timeout, f"updates to reach all {len(watchers)} interested agents", interval=0.05)


async def _bench(steps: list[int], interested: int, updates: int, endpoints: int) -> None:
    print(f"scale: steps {steps} agents, {interested} interested, {updates} updates per step, "
          f"{endpoints} endpoints for memory", flush=True)
    async with ControlPlane() as cp, Fleet(cp.socket, cp.work / "agents.log") as fleet:
        for name, subnet in ((HOT, HOT_SUBNET), (COLD, COLD_SUBNET)):
            await cp.api.CreateNetwork(pb.CreateNetworkRequest(name=name, subnet=subnet), timeout=30)
        scale = _Scale(cp, fleet)
        rows = []
        for total in steps:
            await scale.grow(total, interested)
            watchers = scale.agents[:interested]
            rows.append((total, interested, *await scale.update_cost(watchers, updates)))
        # Every agent takes part: the cost now follows all of them.
        await scale.place(HOT, scale.agents[interested:])
        rows.append((len(scale.agents), len(scale.agents), *await scale.update_cost(scale.agents, updates)))
        _print_table(rows)
        await _memory(cp, scale, endpoints)


def _print_table(rows: list[tuple[int, int, float, float, float]]) -> None:
    print("  update cost as agents are added (controller CPU less its idle rate; latency write -> "
          "last interested agent):", flush=True)
    print(f"  {'agents':>7} {'interested':>10} {'CPU ms/update':>14} {'p50 ms':>8} {'p99 ms':>8}")
    for total, wanted, cpu, p50, p99 in rows:
        print(f"  {total:>7} {wanted:>10} {cpu:>14.2f} {p50:>8.1f} {p99:>8.1f}", flush=True)
    first, last_few = rows[0], rows[-2]
    report(BENCH, f"CPU per update, {last_few[0]} agents / {first[0]} agents ({first[1]} interested)",
           last_few[2] / first[2] if first[2] > 0 else float("inf"), "x",
           limit=GROWTH_TARGET, baseline=last_few[0] / first[0], baseline_name="agents ratio")
    report(BENCH, f"CPU per update, all {rows[-1][0]} interested / {first[1]} interested",
           rows[-1][2] / first[2] if first[2] > 0 else float("inf"), "x",
           baseline=rows[-1][1] / first[1], baseline_name="interested ratio")


async def _memory(cp: ControlPlane, scale: _Scale, endpoints: int) -> None:
    present = (await scale.fleet.call("seen", names=scale.agents[:1]))["seen"]
    missing = endpoints - len(present)
    if missing > 0:
        hosts = [scale.agents[i % len(scale.agents)] for i in range(missing)]
        await scale.place(HOT, hosts)
    await scale.fleet.wait_endpoints(scale.agents, HOT, endpoints, timeout=300)
    controller_mb = rss_kib(cp.controller_pid) / 1024
    async with Fleet(cp.socket, cp.work / "memagent.log") as single:
        await single.start(["memagent"], kind="full")
        empty_mb = single.rss_kib() / 1024
        await scale.place(HOT, ["memagent"])
        await single.wait_endpoints(["memagent"], HOT, endpoints + 1, timeout=120)
        agent_mb = single.rss_kib() / 1024
    report(BENCH, f"controller RSS, {len(scale.agents)} agents, {endpoints} endpoints each", controller_mb, "MB",
           limit=CONTROLLER_RSS_TARGET_MB)
    report(BENCH, f"agent RSS (simulated agent, real view) with {endpoints} table entries", agent_mb, "MB",
           limit=AGENT_RSS_TARGET_MB, baseline=empty_mb, baseline_name="same process before the table")


if __name__ == "__main__":
    raise SystemExit(main())
