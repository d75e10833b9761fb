"""How long from `vxmesh run` until the new container answers a ping from another host, beside `docker run -d` and `podman run -d`.

    .venv/bin/python -m tests.benchmarks.bench_attach [--containers N] [--baseline-runs R]

Builds a 2-host lab (vxbench<hex>), the overlay network `bench`, and a peer
container on h2, with a dockerd and podman on h1 (tests/helpers/engines.py
confines them: no bridge, no iptables, no forwarding, their own /run).
Then, N times, one after the other and interleaved with the engines:
  t0      the installed `vxmesh run -d --host h1 --network bench busybox sleep
          infinity` is started, as a user would run it;
  cli     it exits (the controller answers once h1's agent reported the start);
  ping    the peer container's first ping reply from the new one: `ping -c 1
          -i 0.002` from the peer's network namespace, started as soon as the
          CLI has returned and the new address is known (h2's kernel shows it);
  docker  `docker run -d --network none busybox sleep infinity` on h1, start
          to exit: the same image started by Docker without any networking,
          let alone a ping from another host;
  podman  the same with `podman run -d --network none`.
The targets are ratios to Docker's figures of the same run: attach p50 <=
0.75x Docker's p50, attach p99 <= 1.0x Docker's p99.

Meanwhile h2's kernel table is polled, giving when h2 programmed the new
endpoint (the table's fan-out to the peer). The CLI (VXMESH_TIMING=1), the
controller and h1's agent each write one timing event per run (wall clock),
which split t0..cli into: the interpreter and `cli.main`, the command's
imports, the channel, API checks and the etcd transaction, the watch and
stream to the agent, the agent's wait for its pass, the pass's work before
the container, its image check and netns (side by side), the runtime (crun under conmon, the image from
the host's store; the container's interfaces are built meanwhile, also
shown), and the way back (rules, report, stream, reply, CLI exit).
A warm-up container of each engine first (h1's overlay namespace gets built
then) is not counted.

Also reported, each with its target: `vxmesh --version` and `vxmesh ps`
wall time, beside the interpreter's own start (`python -c pass`).
Baselines, same run, same machine, printed beside:
  * `vxmesh host ls`: the floor of any CLI command (Python start-up, imports,
    connect, one RPC);
  * the same `ping -c 1` to a container that is already reachable: the floor
    of the ping step;
  * bare iproute2: `ip netns add` x2, a veth pair between them, addresses,
    up, and `ping -c 1` across: the kernel work of an attach without vxmesh.
The lab and the engines are removed at the end, also on failure. Needs root.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent import names
from deploy import images
from deploy.lab import Lab
from deploy.topology import Node, Topology
from proto import timing
from tests.benchmarks import figures
from tests.benchmarks.commands import sh
from tests.benchmarks.figures import percentile
from tests.benchmarks.lab_bench import bench_lab, read_table, timing_events, vxmesh_argv, wait_new_entries
from tests.helpers.engines import DockerDaemon, Podman
from tests.helpers.images import BUSYBOX
from tests.helpers.lab_cli import network, run

BENCH = "bench_attach"
NETWORK = "bench"
SUBNET = "10.88.0.0/22"
# The targets, as ratios to Docker's `run -d --network none` of the same run.
TARGET_P50_OF_DOCKER = 0.75
TARGET_P99_OF_DOCKER = 1.0
# The wall-time targets for the CLI alone.
TARGET_VERSION = 0.100
TARGET_PS = 0.150
STEP_TIMEOUT = 30.0
CLI_FLOOR = "vxmesh host ls"
PING_FLOOR = "ping -c 1 to a reachable container"
BARE = "ip netns + veth + ping (no vxmesh)"
INTERPRETER = "python -c pass (the CLI's interpreter)"
DOCKER = "docker run -d --network none"
PODMAN = "podman run -d --network none"
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
    stamps: dict[str, float] = field(default_factory=dict)  # from the CLI's and the daemons' timing events

    @property
    def total(self) -> float:
        return self.ping - self.t0


# (label, from stamp, to stamp): consecutive, so the phases add up to t0..ping.
PHASES = [
    ("CLI: interpreter + cli.main", "t0", "entered"),
    ("CLI: the command's imports", "entered", "imported"),
    ("CLI: channel set-up", "imported", "connected"),
    ("CLI: call -> controller", "connected", "received"),
    ("controller: checks + etcd txn", "received", "committed"),
    ("watch + stream to agent", "committed", "update"),
    ("agent waits for a pass", "update", "pass"),
    ("agent: pass work before it", "pass", "network"),
    ("agent: image check + netns", "network", "built"),   # side by side
    ("runtime: crun + conmon + exec", "built", "process"),   # the interfaces are built meanwhile
    ("rules, report, stream back", "process", "running"),
    ("reply + CLI exit", "running", "cli"),
    ("CLI exit -> ping started", "cli", "ping_start"),
    ("ping -> first reply", "ping_start", "ping"),
]
# Beside the chain: the table's fan-out to the peer host, from the etcd commit.
FANOUT = ("table fan-out: commit -> h2 kernel", "committed", "peer_table")
# Beside the runtime: the container's interfaces and DNS listener, built while it is created.
WIRING = ("interfaces + DNS listener, beside the runtime", "built", "wired")


@dataclass
class Engines:
    docker: DockerDaemon
    podman: Podman


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=30, help="containers timed per engine (default 30)")
    parser.add_argument("--baseline-runs", type=int, default=10, help="runs of each baseline (default 10)")
    args = parser.parse_args(argv)
    if not 1 <= args.containers <= 500:
        parser.error("--containers must be between 1 and 500")
    if not 1 <= args.baseline_runs <= 100:
        parser.error("--baseline-runs must be between 1 and 100")
    with tempfile.TemporaryDirectory(prefix="vxbench-attach-") as tmp, bench_lab(hosts=2) as lab:
        archive = images.busybox_archive(Path(tmp) / "busybox.tar")
        engines = Engines(DockerDaemon(lab, lab.hosts[0]), Podman(lab, lab.hosts[0]))
        try:
            attaches, baselines = asyncio.run(_bench(lab, engines, archive, args.containers,
                                                     args.baseline_runs))
        finally:
            engines.podman.stop()
            engines.docker.stop()
    _report(attaches, baselines)
    return 0


async def _bench(lab: Lab, engines: Engines, archive: Path, n: int,
                 baseline_runs: int) -> tuple[list[Attach], dict[str, list[float]]]:
    h1, h2 = lab.hosts
    lab.cli("network", "create", "--subnet", SUBNET, NETWORK)
    vni = network(lab, NETWORK)["vni"]
    peer = run(lab, "peer", 1, NETWORK, "sleep", "infinity")
    peer_ns = names.container_netns(h2.name, peer["id"])
    engines.docker.start()
    engines.docker.docker("load", "-i", str(archive))
    engines.podman.start()
    engines.podman.podman("load", "-i", str(archive))

    warm = Attach("warmup")
    await _attach(lab, warm, peer_ns, vni)
    await _timed(_docker_argv(engines, "warm-docker"))
    await _timed(_podman_argv(engines, "warm-podman"), engines.podman.env)
    python = [sys.executable, "-c", "pass"]
    baselines = {
        CLI_FLOOR: [await _timed(vxmesh_argv(lab, "host", "ls")) for _ in range(baseline_runs)],
        "vxmesh --version": [await _timed([str(lab.vxmesh_program()), "--version"])
                             for _ in range(baseline_runs)],
        "vxmesh ps": [await _timed(vxmesh_argv(lab, "ps")) for _ in range(baseline_runs)],
        INTERPRETER: [await _timed(python) for _ in range(baseline_runs)],
        PING_FLOOR: [await _timed(_ping_argv(peer_ns, warm.ip)) for _ in range(baseline_runs)],
        BARE: [_bare_attach() for _ in range(baseline_runs)],
        DOCKER: [],
        PODMAN: [],
    }
    attaches = []
    for i in range(n):
        attach = Attach(f"a{i}")
        await _attach(lab, attach, peer_ns, vni)
        attaches.append(attach)
        baselines[DOCKER].append(await _timed(_docker_argv(engines, f"d{i}")))
        baselines[PODMAN].append(await _timed(_podman_argv(engines, f"p{i}"), engines.podman.env))
    _add_daemon_stamps(lab, attaches)
    return attaches, baselines


def _docker_argv(engines: Engines, name: str) -> list[str]:
    return [*engines.docker.argv(), "run", "-d", "--name", name, "--network", "none", "busybox",
            "sleep", "infinity"]


def _podman_argv(engines: Engines, name: str) -> list[str]:
    return [*engines.podman.argv(), "run", "-d", "--name", name, "--network", "none", "busybox",
            "sleep", "infinity"]


async def _attach(lab: Lab, attach: Attach, peer_ns: str, vni: int) -> None:
    h1, h2 = lab.hosts
    known = set((await read_table(h2, vni))[0])
    watch = asyncio.create_task(wait_new_entries(h2, vni, known, 1, STEP_TIMEOUT))
    try:
        attach.t0 = time.time()
        _, err = await _check(vxmesh_argv(lab, "run", "-d", "--name", attach.name, "--host", h1.name,
                                          "--network", NETWORK, BUSYBOX, "sleep", "infinity"),
                              env={**os.environ, "VXMESH_TIMING": "1"})
        attach.cli = time.time()
        (entry,) = await watch
    finally:
        watch.cancel()
    (cli,) = timing.events(err.splitlines(), timing.CLI)
    attach.stamps.update({key: float(cli[key]) for key in ("entered", "imported", "connected")})
    attach.peer_table = entry.seen_at
    attach.ip = entry.ip
    attach.ping_start = time.time()
    await _check(_ping_argv(peer_ns, entry.ip))
    attach.ping = time.time()


def _ping_argv(netns: str, ip: str) -> list[str]:
    # Not `ip netns exec`: no mount namespace to set up, so the ping step
    # costs what ping costs.
    return Node(netns).argv(*PING_ARGS, ip)


async def _check(argv: list[str], env: dict[str, str] | None = None,
                 timeout: float = STEP_TIMEOUT) -> tuple[str, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): "
                           f"{(out + err).decode(errors='replace').strip()[-500:]}")
    return out.decode(errors="replace"), err.decode(errors="replace")


async def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    # The engines' first start may pull in their own set-up (podman's storage): a long timeout.
    await _check(argv, env, timeout=120)
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
        attach.stamps.update({key: float(start[key]) for key in ("update", "network", "built", "wired", "process")})
        attach.stamps["pass"] = float(start["began"])


def _stamp(attach: Attach, key: str) -> float:
    if key in ("t0", "cli", "ping_start", "ping", "peer_table"):
        return getattr(attach, key)
    return attach.stamps[key]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def _report(attaches: list[Attach], baselines: dict[str, list[float]]) -> None:
    totals = [a.total * 1000 for a in attaches]
    ms = {label: [v * 1000 for v in values] for label, values in baselines.items()}
    print(f"container attach: `vxmesh run` -> first ping reply from a container on another host, "
          f"{len(attaches)} containers; `docker run -d` and `podman run -d` (--network none) interleaved")
    for q, ratio in ((50, TARGET_P50_OF_DOCKER), (99, TARGET_P99_OF_DOCKER)):
        docker = percentile(ms[DOCKER], q)
        figures.report(BENCH, f"attach p{q}", percentile(totals, q), "ms", limit=ratio * docker,
                       baseline=docker, baseline_name=f"{DOCKER} p{q}")
    for q in (50, 99):
        figures.report(BENCH, f"attach p{q}, podman beside it", percentile(totals, q), "ms",
                       baseline=percentile(ms[PODMAN], q), baseline_name=f"{PODMAN} p{q}")
    interpreter = percentile(ms[INTERPRETER], 50)
    for label, limit in (("vxmesh --version", TARGET_VERSION), ("vxmesh ps", TARGET_PS)):
        figures.report(BENCH, f"{label} wall time p50", percentile(ms[label], 50), "ms", limit=limit * 1000,
                       baseline=interpreter, baseline_name="python -c pass p50")
    cli = [a.cli - a.t0 for a in attaches]
    print(f"  `vxmesh run` alone: p50 {_ms(percentile(cli, 50))}  p99 {_ms(percentile(cli, 99))}")
    print("  where the time goes (median of each phase; they add up to about the total):")
    for label, start, end in PHASES:
        phase = [_stamp(a, end) - _stamp(a, start) for a in attaches]
        print(f"    {label:<32} {_ms(statistics.median(phase))}   max {_ms(max(phase))}")
    for label, start, end in (WIRING, FANOUT):
        beside = [_stamp(a, end) - _stamp(a, start) for a in attaches]
        print(f"  beside it, {label}: p50 {_ms(percentile(beside, 50))}  max {_ms(max(beside))}")
    peer = [a.peer_table - a.t0 for a in attaches]
    late = sum(a.peer_table > a.cli for a in attaches)
    print(f"  h2 kernel has the endpoint (FDB + neighbour) after t0: p50 {_ms(percentile(peer, 50))}  "
          f"p99 {_ms(percentile(peer, 99))}; later than the CLI's return for {late} of {len(attaches)}")
    print("  baselines (same run):")
    for label, values in baselines.items():
        print(f"    {label:<40} p50 {_ms(percentile(values, 50))}  p99 {_ms(percentile(values, 99))}  "
              f"min {_ms(min(values))}")
    p50 = percentile(totals, 50)
    print(f"  ratios: attach p50 / docker p50 {p50 / percentile(ms[DOCKER], 50):.2f}; "
          f"attach p50 / podman p50 {p50 / percentile(ms[PODMAN], 50):.2f}; "
          f"attach p50 / `host ls` p50 {p50 / percentile(ms[CLI_FLOOR], 50):.2f}; "
          f"attach p50 / bare iproute2 attach p50 {p50 / percentile(ms[BARE], 50):.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
