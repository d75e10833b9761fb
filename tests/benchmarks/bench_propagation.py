"""Propagation latency: an endpoint created through the user API reaching every agent that cares.

    .venv/bin/python -m tests.benchmarks.bench_propagation [--agents 100] [--endpoints 1000] [--rate 25]
                                                            [--processes 1]

A private etcd and a controller process (control_env.py), and --agents
simulated agents in --processes more processes (sim_agents.py: the agent's
own stream code, no kernel; fleet.py's Fleets). Every agent gets one
container on the overlay network "bench" through the API, so all of them
take part in it. Then --endpoints
containers are created with the API's Run at a steady --rate, spread over
the hosts, each call in its own task (a slow call does not delay the next).
For every endpoint we take the moment the last agent received it and report:
  - from the API call's return (the user's view: is it everywhere once
    `vxmesh run` returns?), clamped at 0 and with the share already
    delivered by then: the target applies here;
  - from the moment an independent etcd watch in this process saw the
    write: the controller's own fan-out cost;
  - from the moment the call was made: an upper bound that includes the API's work.
Baselines in the same run: an etcd put -> watch round trip, and an idle gRPC echo.
"""
from __future__ import annotations

import argparse
import asyncio
import time

from controller.keys import Keys
from proto import vxmesh_pb2 as pb
from tests.benchmarks import baselines
from tests.benchmarks.control_env import ControlPlane
from tests.benchmarks.figures import percentile, report
from tests.benchmarks.fleet import Fleets
from tests.benchmarks.proc_stats import cpu_seconds
from tests.helpers.images import BUSYBOX

BENCH = "propagation"
NETWORK = "bench"
SUBNET = "10.128.0.0/16"
P50_TARGET_MS, P99_TARGET_MS = 20.0, 100.0
DELIVERY_SECONDS = 120.0
IDLE_SECONDS = 3.0  # whole seconds: the agents' heartbeats fall evenly into it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=100, help="simulated agents (default 100)")
    parser.add_argument("--endpoints", type=int, default=1000, help="endpoints created (default 1000)")
    parser.add_argument("--rate", type=float, default=10.0, help="API calls started per second (default 10)")
    parser.add_argument("--processes", type=int, default=1, help="processes of simulated agents (default 1)")
    args = parser.parse_args(argv)
    if not 1 <= args.agents <= 1000 or not 1 <= args.endpoints <= 20_000 or not 0 < args.rate <= 1000:
        parser.error("--agents 1..1000, --endpoints 1..20000, --rate in (0, 1000]")
    if not 1 <= args.processes <= 8:
        parser.error("--processes 1..8")
    asyncio.run(_bench(args.agents, args.endpoints, args.rate, args.processes))
    return 0


async def _bench(agents: int, endpoints: int, rate: float, processes: int) -> None:
    print(f"propagation: {agents} simulated agents, {endpoints} endpoints created by the API "
          f"at {rate:g}/s", flush=True)
    keys = Keys()
    async with ControlPlane() as cp, Fleets(cp.socket, cp.work, processes) as fleet:
        await cp.api.CreateNetwork(pb.CreateNetworkRequest(name=NETWORK, subnet=SUBNET), timeout=30)
        hosts = [f"sim{i:03d}" for i in range(agents)]
        await fleet.start(hosts, kind="light", track=keys.endpoints(NETWORK) + "ep-")
        # Every host takes part in the network: one container on it each.
        await _run_all(cp, [(f"anchor-{h}", h) for h in hosts], concurrency=8)
        await fleet.wait_endpoints(hosts, NETWORK, agents)

        etcd_ms = await baselines.etcd_put_watch_ms(cp.etcd)
        echo_ms = await baselines.grpc_echo_ms(cp.api)

        committed: dict[str, float] = {}
        watcher = asyncio.create_task(_watch_endpoints(cp, keys, committed))
        # The controller's idle rate (mostly lease renewals for the agents'
        # heartbeats), so the per-endpoint figure is the endpoints' own cost.
        idle_start = cpu_seconds(cp.controller_pid)
        await asyncio.sleep(IDLE_SECONDS)
        idle_rate = (cpu_seconds(cp.controller_pid) - idle_start) / IDLE_SECONDS
        cpu_before, began = (cpu_seconds(cp.controller_pid), fleet.cpu_seconds()), time.monotonic()
        calls = await _steady_runs(cp, hosts, endpoints, rate)
        await fleet.wait_endpoints(hosts, NETWORK, agents + endpoints, timeout=DELIVERY_SECONDS)
        cpu_used = cpu_seconds(cp.controller_pid) - cpu_before[0] - idle_rate * (time.monotonic() - began)
        fleet_cpu = fleet.cpu_seconds() - cpu_before[1]
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        seen = await fleet.seen(hosts)

    from_return, from_commit, from_issue, before_return = [], [], [], 0
    for name, (issued, returned) in calls.items():
        key = keys.endpoint(NETWORK, name)
        count, last = seen[key]
        if count != agents:
            raise AssertionError(f"endpoint {name} reached {count} of {agents} agents")
        before_return += last <= returned
        from_return.append(max(0.0, last - returned) * 1000)
        from_issue.append((last - issued) * 1000)
        from_commit.append((last - committed[key]) * 1000)
    n = len(calls)
    print(f"  {before_return} of {n} endpoints ({100 * before_return / n:.0f}%) had reached all "
          f"{agents} agents before their Run call returned", flush=True)
    report(BENCH, "p50 API return -> all agents", percentile(from_return, 50), "ms", limit=P50_TARGET_MS,
           baseline=etcd_ms, baseline_name="etcd put->watch")
    report(BENCH, "p99 API return -> all agents", percentile(from_return, 99), "ms", limit=P99_TARGET_MS,
           baseline=etcd_ms, baseline_name="etcd put->watch")
    report(BENCH, "p50 etcd commit seen -> all agents", percentile(from_commit, 50), "ms",
           limit=P50_TARGET_MS, baseline=etcd_ms, baseline_name="etcd put->watch")
    report(BENCH, "p99 etcd commit seen -> all agents", percentile(from_commit, 99), "ms",
           limit=P99_TARGET_MS, baseline=etcd_ms, baseline_name="etcd put->watch")
    report(BENCH, "p50 API call -> all agents", percentile(from_issue, 50), "ms",
           baseline=echo_ms, baseline_name="gRPC echo")
    report(BENCH, "p99 API call -> all agents", percentile(from_issue, 99), "ms",
           baseline=echo_ms, baseline_name="gRPC echo")
    report(BENCH, f"controller idle CPU with {agents} agents connected", idle_rate * 1000, "ms/s")
    report(BENCH, "controller CPU per endpoint (API + fan-out, less idle)", max(cpu_used, 0.0) / n * 1000, "ms")
    # The simulated agents share one process: their receiving is part of every latency above.
    report(BENCH, f"simulated agents' CPU per endpoint (all {agents}, {processes} processes)", fleet_cpu / n * 1000,
           "ms")


async def _run_all(cp: ControlPlane, wanted: list[tuple[str, str]], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str, host: str) -> None:
        async with gate:
            await _run(cp, name, host)

    await asyncio.gather(*(one(name, host) for name, host in wanted))


async def _run(cp: ControlPlane, name: str, host: str) -> None:
    await cp.api.Run(pb.RunRequest(name=name, host=host, networks=[NETWORK], image=BUSYBOX, command=["sleep", "infinity"]),
                     timeout=60)


async def _steady_runs(cp: ControlPlane, hosts: list[str], count: int, rate: float) -> dict[str, tuple[float, float]]:
    """Start one Run every 1/rate seconds; (issued, returned) monotonic times per container."""
    calls: dict[str, tuple[float, float]] = {}

    async def one(name: str, host: str) -> None:
        issued = time.monotonic()
        await _run(cp, name, host)
        calls[name] = (issued, time.monotonic())

    tasks = []
    began = time.monotonic()
    for i in range(count):
        # Paced against the start, so a slow moment is not carried into every later call.
        await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(f"ep-{i:05d}", hosts[i % len(hosts)])))
    await asyncio.gather(*tasks)
    return calls


async def _watch_endpoints(cp: ControlPlane, keys: Keys, committed: dict[str, float]) -> None:
    start = await cp.etcd.revision() + 1
    async for _, events in cp.etcd.watch(keys.endpoints(NETWORK), start):
        now = time.monotonic()
        for event in events:
            committed.setdefault(event.kv.key, now)


if __name__ == "__main__":
    raise SystemExit(main())
