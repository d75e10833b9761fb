"""Services: a VIP's cost next to a task's own address, and how fast a dead task leaves the balancers.

    .venv/bin/python -m tests.benchmarks.bench_services [--requests N] [--kills N]

Builds a 3-host lab (vxbench<hex>) with the overlay network `bench`, a
client container on h1 and a 3-replica service `web` (busybox httpd, one
task per host). Then:

- connection rate and latency: N sequential HTTP requests (`wget`, a new
  TCP connection each) from the client to the VIP, then N to one task's own
  address, each loop timed by the shell inside the client (`time`), so no
  CLI start-up is counted. The figure is the VIP's; the baseline, from the
  same run, is the direct one.
- death to balancer: K times, a task is killed and the client's load-balancer
  table (nftables, read from its namespace every 2 ms) is watched until the
  task's address has left it; the figure is the time from the task's exit
  (its agent's report, wall clock) to that read. Target: p50 <= 1 s.

The lab is removed at the end, also on failure. Needs root.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time

from agent import names
from agent.kernel import service_lb
from deploy.lab import Lab
from tests.benchmarks import figures
from tests.benchmarks.figures import median, percentile
from tests.benchmarks.lab_bench import bench_lab
from tests.helpers.images import BUSYBOX
from tests.helpers.lab_cli import inspect, run

NETWORK = "bench"
SUBNET = "10.91.0.0/24"
SERVE = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
TARGET_LB_P50 = 1.0
POLL = 0.002
STEP_TIMEOUT = 60.0
_REAL = re.compile(r"real\s+(?:(\d+)m\s*)?([\d.]+)s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300,
                        help="requests per path, a multiple of 3 (default 300)")
    parser.add_argument("--kills", type=int, default=5, help="tasks killed (default 5)")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 10_000 or not 1 <= args.kills <= 50:
        parser.error("--requests must be 1..10000 and --kills 1..50")
    args.requests = max(3, args.requests - args.requests % 3)
    with bench_lab(hosts=3) as lab:
        vip, direct, removals = _bench(lab, args.requests, args.kills)
    print(f"  {args.requests} requests each: VIP {vip:.2f} s, the tasks' own addresses {direct:.2f} s")
    if not vip or not direct:
        # The shell's `time` counts in hundredths: too few requests read as 0 s.
        print("  too few requests to time against each other: ask for more with --requests", file=sys.stderr)
        return 1
    figures.report("bench_services", "VIP connection rate", args.requests / vip, "conn/s",
                   higher_is_better=True, baseline=args.requests / direct, baseline_name="direct to the tasks")
    figures.report("bench_services", "VIP connection latency", vip / args.requests * 1000, "ms",
                   baseline=direct / args.requests * 1000, baseline_name="direct to the tasks")
    print(f"  death to balancer, {len(removals)} kills: " + ", ".join(f"{r * 1000:.0f}" for r in removals) + " ms")
    figures.report("bench_services", "task death to leaving the balancer p50", median(removals) * 1000, "ms",
                   limit=TARGET_LB_P50 * 1000)
    figures.report("bench_services", "task death to leaving the balancer max", percentile(removals, 100) * 1000,
                   "ms")
    return 0


def _bench(lab: Lab, requests: int, kills: int) -> tuple[float, float, list[float]]:
    lab.cli("network", "create", "--subnet", SUBNET, NETWORK)
    run(lab, "client", 0, NETWORK, "sleep", "infinity")
    lab.cli("service", "create", "--name", "web", "--replicas", "3", "--network", NETWORK,
            "--restart-delay", "2s", BUSYBOX, "sh", "-c", SERVE)
    detail = _settled(lab)
    vip = detail["virtual_ips"][NETWORK]
    client_ns = names.container_netns(inspect(lab, "client")["host"], inspect(lab, "client")["id"])
    _wait(lambda: len(_backends(client_ns, vip) or []) == 3, "the client's map")
    # Direct: the same three tasks, in turn, so both paths reach the same mix of local and remote.
    direct = [t["addresses"][NETWORK] for t in detail["tasks"]]
    vip_seconds = _timed_loop(lab, [vip], requests)
    direct_seconds = _timed_loop(lab, direct, requests // len(direct))
    removals = []
    for _ in range(kills):
        victim = _settled(lab)["tasks"][0]
        address = victim["addresses"][NETWORK]
        lab.cli("kill", victim["name"])
        seen = _wait(lambda: address not in (_backends(client_ns, vip) or [address]), "the task out of the map")
        finished = inspect(lab, victim["name"])["finished_at"]
        removals.append(seen - finished)
        _wait(lambda: len(_backends(client_ns, vip) or []) == 3 and _is_settled(lab), "the slot refilled", 0.2)
    return vip_seconds, direct_seconds, removals


def _timed_loop(lab: Lab, addresses: list[str], rounds: int) -> float:
    """Seconds for `rounds` x len(addresses) sequential requests, as the client's shell timed them."""
    each = "; ".join(f"wget -qO- http://{a}/ >/dev/null || exit 1" for a in addresses)
    loop = f"for i in $(seq {rounds}); do {each}; done"
    proc = lab.cli("exec", "client", "--", "sh", "-c", f"time sh -c '{loop}'", timeout=600)
    match = _REAL.search(proc.stderr + proc.stdout)
    if match is None:
        raise RuntimeError(f"no timing in the client's output: {proc.stderr!r}")
    return int(match.group(1) or 0) * 60 + float(match.group(2))


def _backends(netns: str, vip: str) -> list[str] | None:
    entries = asyncio.run(service_lb.read(netns))
    return next((list(e.backends) for e in entries if e.vip == vip), None)


def _detail(lab: Lab) -> dict:
    [detail] = json.loads(lab.cli("service", "inspect", "web").stdout)
    return detail


def _is_settled(lab: Lab) -> bool:
    tasks = _detail(lab)["tasks"]
    return len(tasks) == 3 and all(t["state"] == "running" for t in tasks)


def _settled(lab: Lab) -> dict:
    _wait(lambda: _is_settled(lab), "three running tasks of web", 0.2)
    return _detail(lab)


def _wait(condition, what: str, poll: float = POLL) -> float:
    """Poll until `condition()`; the wall-clock time it first held."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(poll)
    return time.time()


if __name__ == "__main__":
    raise SystemExit(main())
