"""How long from `vxmesh run` until the new container answers a ping from another host.

    .venv/bin/python -m tests.benchmarks.bench_attach [--containers N] [--baseline-runs R]

Builds a 2-host lab (vxbench<hex>), the overlay network `bench`, and a peer
container on h2. Then, N times, one after the other:
  t0      the installed `vxmesh run -d --host h1 --network bench -- sleep infinity`
          is started, as a user would run it;
  cli     it exits (the controller answers once h1's agent reported the start);
  ping    the peer container's first ping reply from the new one: `ping -c 1
          -i 0.002` from the peer's network namespace, started as soon as the
          CLI has returned and the new address is known (h2's kernel shows it).
Meanwhile h2's kernel table is polled, giving when h2 programmed the new
endpoint. The controller and h1's agent log one timing event per start (wall
clock), which split t0..cli into: CLI start-up and connect, API checks and
the etcd transaction, the watch and stream to the agent, the agent's wait for
its pass, the pass's work before the container, netns + veth, crun under
conmon (the image from the host's store), and the way back (rules, report, stream, reply, CLI exit).
A warm-up container first (h1's overlay namespace gets built then) is not
counted.

Baselines, same run, same machine:
  * `vxmesh host ls`: the floor of any CLI command (Python start-up, imports,
    connect, one RPC);
  * the same `ping -c 1` to a container that is already reachable: the floor
    of the ping step;
  * bare iproute2: `ip netns add` x2, a veth pair between them, addresses,
    up, and `ping -c 1` across: the kernel work of an attach without vxmesh.
The lab is removed at the end, also on failure. Needs root.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field

from agent import names
from deploy.lab import Lab
from deploy.topology import Node, Topology
from proto import timing
from tests.benchmarks import figures
from tests.benchmarks.commands import sh
from tests.benchmarks.figures import percentile
from tests.benchmarks.lab_bench import bench_lab, read_table, timing_events, vxmesh_argv, wait_new_entries
from tests.helpers.images import BUSYBOX
from tests.helpers.lab_cli import network, run

NETWORK = "bench"
SUBNET = "10.88.0.0/22"
TARGET_P50 = 0.150
TARGET_P99 = 0.300
STEP_TIMEOUT = 30.0
CLI_FLOOR = "vxmesh host ls"
PING_FLOOR = "ping -c 1 to a reachable container"
BARE = "ip netns + veth + ping (no vxmesh)"
PING_ARGS = ("ping", "-n", "-q", "-c", "1", "-i", "0.002", "-w", "10")


@dataclass
class Attach:
    name: str
    ip: str = ""
    t0: float = 0.0
    cli: float = 0.0
    peer_table: float = 0.0     # h2's kernel first showed the endpoint
    ping_start: float = 0.0
    ping: float = 0.0
    stamps: dict[str, float] = field(default_factory=dict)  # from the daemons' timing events

    @property
    def total(self) -> float:
        return self.ping - self.t0


# (label, from stamp, to stamp): consecutive, so the phases add up to t0..cli.
PHASES = [
    ("CLI start-up + connect", "t0", "received"),
    ("API checks + etcd txn", "received", "committed"),
    ("watch + stream to agent", "committed", "update"),
    ("agent waits for a pass", "update", "pass"),
    ("pass work before it", "pass", "network"),
    ("netns + veth", "network", "built"),
    ("crun + conmon + exec", "built", "process"),
    ("rules, report, stream back", "process", "running"),
    ("reply + CLI exit", "running", "cli"),
    ("CLI exit -> ping started", "cli", "ping_start"),
    ("ping -> first reply", "ping_start", "ping"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=30, help="containers timed (default 30)")
    parser.add_argument("--baseline-runs", type=int, default=10, help="runs of each baseline (default 10)")
    args = parser.parse_args(argv)
    if not 1 <= args.containers <= 500:
        parser.error("--containers must be between 1 and 500")
    if not 1 <= args.baseline_runs <= 100:
        parser.error("--baseline-runs must be between 1 and 100")
    with bench_lab(hosts=2) as lab:
        attaches, baselines = asyncio.run(_bench(lab, args.containers, args.baseline_runs))
    _report(attaches, baselines)
    return 0


async def _bench(lab: Lab, n: int, baseline_runs: int) -> tuple[list[Attach], dict[str, list[float]]]:
    h1, h2 = lab.hosts
    lab.cli("network", "create", "--subnet", SUBNET, NETWORK)
    vni = network(lab, NETWORK)["vni"]
    peer = run(lab, "peer", 1, NETWORK, "sleep", "infinity")
    peer_ns = names.container_netns(h2.name, peer["id"])

    warm = Attach("warmup")
    await _attach(lab, warm, peer_ns, vni)
    baselines = {
        CLI_FLOOR: [await _timed(vxmesh_argv(lab, "host", "ls")) for _ in range(baseline_runs)],
        PING_FLOOR: [await _timed(_ping_argv(peer_ns, warm.ip)) for _ in range(baseline_runs)],
        BARE: [_bare_attach() for _ in range(baseline_runs)],
    }
    attaches = []
    for i in range(n):
        attach = Attach(f"a{i}")
        await _attach(lab, attach, peer_ns, vni)
        attaches.append(attach)
    _add_daemon_stamps(lab, attaches)
    return attaches, baselines


async def _attach(lab: Lab, attach: Attach, peer_ns: str, vni: int) -> None:
    h1, h2 = lab.hosts
    known = set((await read_table(h2, vni))[0])
    watch = asyncio.create_task(wait_new_entries(h2, vni, known, 1, STEP_TIMEOUT))
    try:
        attach.t0 = time.time()
        await _check(vxmesh_argv(lab, "run", "-d", "--name", attach.name, "--host", h1.name,
                                 "--network", NETWORK, BUSYBOX, "sleep", "infinity"))
        attach.cli = time.time()
        (entry,) = await watch
    finally:
        watch.cancel()
    attach.peer_table = entry.seen_at
    attach.ip = entry.ip
    attach.ping_start = time.time()
    await _check(_ping_argv(peer_ns, entry.ip))
    attach.ping = time.time()


def _ping_argv(netns: str, ip: str) -> list[str]:
    # Not `ip netns exec`: no mount namespace to set up, so the ping step
    # costs what ping costs.
    return Node(netns).argv(*PING_ARGS, ip)


async def _check(argv: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), STEP_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): "
                           f"{(out + err).decode(errors='replace').strip()[-500:]}")


async def _timed(argv: list[str]) -> float:
    started = time.perf_counter()
    await _check(argv)
    return time.perf_counter() - started


def _bare_attach() -> float:
    """Two namespaces joined by a veth pair, pinged across, with iproute2 alone.

    The timed commands are spelled out rather than taken from
    deploy/topology.py, which also sets `lo` up: this baseline is these
    commands, and must not move when the lab builder changes. The namespaces
    are named and removed as a topology's."""
    with Topology.fresh("vxbench") as topology:
        a, b = topology.name("a"), topology.name("b")
        started = time.perf_counter()
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        # Created inside `a` and moved straight to `b`: the root namespace never holds it.
        sh("ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
        sh("ip", "-n", a, "addr", "add", "10.99.0.1/24", "dev", "eth0")
        sh("ip", "-n", b, "addr", "add", "10.99.0.2/24", "dev", "eth0")
        sh("ip", "-n", a, "link", "set", "eth0", "up")
        sh("ip", "-n", b, "link", "set", "eth0", "up")
        sh(*Node(a).argv(*PING_ARGS, "10.99.0.2"))
        return time.perf_counter() - started


def _add_daemon_stamps(lab: Lab, attaches: list[Attach]) -> None:
    agent = f"agent-{lab.hosts[0].name}"
    runs = {e["container"]: e for e in timing_events(lab, "controller", timing.RUN)}
    starts = {e["container"]: e for e in timing_events(lab, agent, timing.CONTAINER_STARTED)}
    for attach in attaches:
        if attach.name not in runs or attach.name not in starts:
            raise RuntimeError(f"no timing event for container {attach.name} in the logs of the controller "
                               f"and {agent}")
        run, start = runs[attach.name], starts[attach.name]
        attach.stamps.update({key: float(run[key]) for key in ("received", "committed", "running")})
        attach.stamps.update({key: float(start[key]) for key in ("update", "network", "built", "process")})
        attach.stamps["pass"] = float(start["began"])


def _stamp(attach: Attach, key: str) -> float:
    if key in ("t0", "cli", "ping_start", "ping", "peer_table"):
        return getattr(attach, key)
    return attach.stamps[key]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def _report(attaches: list[Attach], baselines: dict[str, list[float]]) -> None:
    totals = [a.total * 1000 for a in attaches]
    bare = percentile(baselines[BARE], 50) * 1000
    print(f"container attach: `vxmesh run` -> first ping reply from a container on another host, "
          f"{len(attaches)} containers")
    for q, limit in ((50, TARGET_P50), (99, TARGET_P99)):
        figures.report("attach", f"attach p{q}", percentile(totals, q), "ms", limit=limit * 1000,
                       baseline=bare, baseline_name="bare iproute2 attach p50")
    cli = [a.cli - a.t0 for a in attaches]
    print(f"  `vxmesh run` alone: p50 {_ms(percentile(cli, 50))}  p99 {_ms(percentile(cli, 99))}")
    print("  where the time goes (median of each phase; they add up to about the total):")
    for label, start, end in PHASES:
        phase = [_stamp(a, end) - _stamp(a, start) for a in attaches]
        print(f"    {label:<28} {_ms(statistics.median(phase))}   max {_ms(max(phase))}")
    peer = [a.peer_table - a.t0 for a in attaches]
    late = sum(a.peer_table > a.cli for a in attaches)
    print(f"  h2 kernel has the endpoint (FDB + neighbour) after t0: p50 {_ms(percentile(peer, 50))}  "
          f"p99 {_ms(percentile(peer, 99))}; later than the CLI's return for {late} of {len(attaches)}")
    print("  baselines (same run):")
    for label, values in baselines.items():
        print(f"    {label:<36} p50 {_ms(percentile(values, 50))}  min {_ms(min(values))}")
    floor = percentile(baselines[CLI_FLOOR], 50) * 1000
    p50 = percentile(totals, 50)
    print(f"  ratios: attach p50 / `host ls` p50 {p50 / floor:.2f}; "
          f"attach p50 / bare iproute2 attach p50 {p50 / bare:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
