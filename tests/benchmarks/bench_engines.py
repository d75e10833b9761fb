"""How long from `docker run -d` and `podman run -d` until the container answers a ping from another host, beside `vxmesh run -d`.

    .venv/bin/python -m tests.benchmarks.bench_engines [--containers N]

Builds a 3-host lab (vxbench<hex>) with the overlay network `bench`, a
dockerd in h1's namespace (the Docker network `bench` on it, through the
agent's plug-in), podman on h2 (`vxmesh cni install`'s conflist) and a peer
container of vxmesh's own on h3 (tests/helpers/engines.py confines the
engines as the integration tests do). Then N times each, interleaved:
  t0       the command is started, as a user would run it:
             vxmesh run -d --host h1 --network bench busybox sleep 3600
             docker run -d --network bench busybox sleep 3600       (h1)
             podman run -d --network bench busybox sleep 3600       (h2)
  reached  the peer's first ping reply from the new container (`ping -c 1
           -i 0.002` from the peer's namespace, started when the command has
           returned and the new address is read back with the same tool's
           `inspect`, a second start of the CLI for each).
The figure is t0..reached; vxmesh's own `run -d`, measured in the same run,
is the baseline of the engines'. A warm-up container of each is not counted.
The lab and the engines are removed at the end, also on failure. Needs root.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from agent import names
from deploy import images
from deploy.topology import Node
from tests.benchmarks import figures
from tests.benchmarks.commands import sh
from tests.benchmarks.figures import median, percentile
from tests.benchmarks.lab_bench import bench_lab, vxmesh_argv
from tests.helpers.engines import DockerDaemon, Podman
from tests.helpers.images import BUSYBOX
from tests.helpers.lab_cli import run

NETWORK = "bench"
SUBNET = "10.89.0.0/22"
PING_ARGS = ("ping", "-n", "-q", "-c", "1", "-i", "0.002", "-w", "10")
ENGINES = ("vxmesh", "docker", "podman")
BENCH = "bench_engines"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=10, help="containers timed per engine (default 10)")
    args = parser.parse_args(argv)
    if not 1 <= args.containers <= 100:
        parser.error("--containers must be between 1 and 100")
    with tempfile.TemporaryDirectory(prefix="vxbench-engines-") as tmp, bench_lab(hosts=3) as lab:
        archive = images.busybox_archive(Path(tmp) / "busybox.tar")
        docker = DockerDaemon(lab, lab.hosts[0])
        podman = Podman(lab, lab.hosts[1])
        try:
            times = _bench(lab, docker, podman, archive, args.containers)
        finally:
            podman.stop()
            docker.stop()
    _report(times)
    return 0


def _bench(lab, docker: DockerDaemon, podman: Podman, archive: Path, n: int) -> dict[str, list[float]]:
    lab.cli("network", "create", "--subnet", SUBNET, NETWORK)
    peer = run(lab, "peer", 2, NETWORK, "sleep", "3600")
    peer_ns = names.container_netns(lab.hosts[2].name, peer["id"])
    docker.start()
    docker.docker("load", "-i", str(archive))
    docker.docker("network", "create", "-d", "vxmesh", "--ipam-driver", "vxmesh", "--subnet", SUBNET,
                  "-o", f"vxmesh.network={NETWORK}", NETWORK)
    podman.start()
    podman.install_network(NETWORK, NETWORK)
    podman.podman("load", "-i", str(archive))

    starts = {
        "vxmesh": lambda name: _vxmesh(lab, name),
        "docker": lambda name: _docker(docker, name),
        "podman": lambda name: _podman(podman, name),
    }
    for engine, start in starts.items():   # warm-up: first images, namespaces, caches
        _reached(start, f"warm-{engine}", peer_ns)
    times: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    for i in range(n):
        for engine, start in starts.items():
            times[engine].append(_reached(start, f"{engine[0]}{i}", peer_ns))
    return times


def _reached(start, name: str, peer_ns: str) -> float:
    t0 = time.perf_counter()
    ip = start(name)
    sh(*Node(peer_ns).argv(*PING_ARGS, ip))
    return time.perf_counter() - t0


def _vxmesh(lab, name: str) -> str:
    sh(*vxmesh_argv(lab, "run", "-d", "--name", name, "--host", lab.hosts[0].name, "--network", NETWORK,
                    BUSYBOX, "sleep", "3600"))
    # The same template as Docker's and podman's below: inspect's fields are Docker's.
    return sh(*vxmesh_argv(lab, "inspect", "-f", f"{{{{.NetworkSettings.Networks.{NETWORK}.IPAddress}}}}",
                           name)).stdout.strip()


def _docker(docker: DockerDaemon, name: str) -> str:
    docker.docker("run", "-d", "--name", name, "--network", NETWORK, "busybox", "sleep", "3600")
    return docker.docker("inspect", "-f", f"{{{{.NetworkSettings.Networks.{NETWORK}.IPAddress}}}}",
                         name).stdout.strip()


def _podman(podman: Podman, name: str) -> str:
    podman.podman("run", "-d", "--name", name, "--network", NETWORK, "busybox", "sleep", "3600")
    return podman.podman("inspect", "-f", f"{{{{.NetworkSettings.Networks.{NETWORK}.IPAddress}}}}",
                         name).stdout.strip()


def _report(times: dict[str, list[float]]) -> None:
    ms = {engine: [t * 1000 for t in values] for engine, values in times.items()}
    baseline = median(ms["vxmesh"])
    print(f"  time from the command to a ping reply from another host, {len(ms['vxmesh'])} containers each:")
    for engine in ENGINES:
        print(f"    {engine:<7} p50 {median(ms[engine]):8.1f} ms   p90 {percentile(ms[engine], 90):8.1f} ms   "
              f"max {max(ms[engine]):8.1f} ms")
    figures.report(BENCH, "vxmesh run -d to reachable from another host, p50", baseline, "ms")
    for engine in ("docker", "podman"):
        figures.report(BENCH, f"{engine} run -d to reachable from another host, p50", median(ms[engine]), "ms",
                       baseline=baseline, baseline_name="vxmesh run -d p50")


if __name__ == "__main__":
    raise SystemExit(main())
