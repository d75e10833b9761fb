"""Snapshot: a new agent joining a network of 10,000 endpoints gets, then programs, the whole table.

    .venv/bin/python -m tests.benchmarks.bench_snapshot [--endpoints 10000] [--no-kernel]

A private etcd and a controller process; the network "bench" holds
--endpoints stopped containers (preseed.py) on 100 agentless hosts kept
alive on a lease. A simulated agent with the real agent's view
(sim_agents.py, "full") then joins it twice:
  - first container: the agent is connected, the API runs its first
    container on the network, and the agent gets the network's whole table
    in the same stream (timed from the Run call to the last row decoded);
  - fresh connect: the agent reconnects with nothing (revision 0) and gets
    everything in its snapshot (timed from the connect to the last row decoded).
Then the table it received is programmed, as the agent does (table_diff +
agent/kernel/table.py), into a VXLAN device in a throwaway namespace
vxbench<hex>-t, deleted afterwards (needs root). Baseline in the same run:
a raw etcd range read of the same rows.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from agent.kernel import table
from agent.table_diff import desired_entries
from controller.keys import Keys
from proto import vxmesh_pb2 as pb
from proto.records import Endpoint
from tests.benchmarks import preseed
from tests.benchmarks.control_env import ControlPlane
from tests.benchmarks.figures import median, report
from tests.benchmarks.fleet import Fleet
from tests.benchmarks.vxlan_device import VNI, fresh_vxlan, program_batches, throwaway_node, write_batches
from tests.helpers.images import BUSYBOX
from tests.helpers.polling import wait_until

BENCH = "snapshot"
NETWORK = "bench"
SUBNET = "10.128.0.0/16"
RECEIVE_TARGET_S = 1.0
PROGRAM_TARGET_S = 1.0
GHOSTS = 100
JOINER = "joiner"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=10_000, help="endpoints in the network (default 10000)")
    parser.add_argument("--no-kernel", action="store_true", help="skip programming the table into a kernel")
    args = parser.parse_args(argv)
    if not 1 <= args.endpoints <= 60_000:
        parser.error("--endpoints must be between 1 and 60000")
    asyncio.run(_bench(args.endpoints, not args.no_kernel))
    return 0


async def _bench(count: int, kernel: bool) -> None:
    print(f"snapshot: an agent joining a network of {count} endpoints", flush=True)
    keys = Keys()
    async with ControlPlane() as cp, Fleet(cp.socket, cp.work / "agents.log") as fleet:
        await cp.api.CreateNetwork(pb.CreateNetworkRequest(name=NETWORK, subnet=SUBNET), timeout=30)
        ghosts = preseed.ghost_hosts("ghost", GHOSTS)
        lease = await preseed.register_ghost_hosts(cp.etcd, keys, ghosts)
        try:
            spots = preseed.placements("seed", ghosts, count, SUBNET, first_offset=256)
            revision = await preseed.write_containers(cp.etcd, keys, NETWORK, spots)
            await _controller_at(cp, revision)
            read_s = await _etcd_read_seconds(cp, keys)

            await fleet.start([JOINER], kind="full")
            started = time.monotonic()
            await cp.api.Run(pb.RunRequest(name="joiner-first", host=JOINER, networks=[NETWORK],
                                           image=BUSYBOX, command=["sleep", "infinity"]), timeout=60)
            reached = (await fleet.wait_endpoints([JOINER], NETWORK, count + 1))[JOINER]
            first_container_s = reached - started

            await fleet.call("stop_agents", names=[JOINER])
            reply = await fleet.start([JOINER], kind="full")
            reached = (await fleet.wait_endpoints([JOINER], NETWORK, count + 1))[JOINER]
            fresh_s = reached - reply["t_start"]
            rows = (await fleet.call("endpoints", name=JOINER, network=NETWORK))["endpoints"]
        finally:
            await cp.etcd.revoke(lease)

    report(BENCH, f"fresh connect -> {count + 1} rows decoded", fresh_s, "s", limit=RECEIVE_TARGET_S,
           baseline=read_s, baseline_name="etcd range read of the rows")
    report(BENCH, "first container run -> whole table decoded", first_container_s, "s",
           limit=RECEIVE_TARGET_S, baseline=read_s, baseline_name="etcd range read of the rows")
    if kernel:
        await _program(rows)


async def _controller_at(cp: ControlPlane, revision: int, timeout: float = 120) -> None:
    """Wait until the controller's cache has seen the preseeded state."""
    async def reached() -> bool:
        return (await cp.api.Health(pb.Empty(), timeout=10)).revision >= revision
    await wait_until(reached, timeout, f"the controller to reach etcd revision {revision}", interval=0.05)


async def _etcd_read_seconds(cp: ControlPlane, keys: Keys) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        await cp.etcd.get_prefix(keys.endpoints(NETWORK))
        times.append(time.perf_counter() - started)
    return median(times)


async def _program(rows: list[dict]) -> None:
    """Program the received table into a fresh VXLAN device, as the agent would."""
    fdb, neigh = desired_entries((Endpoint.from_dict(r) for r in rows), JOINER)
    with throwaway_node() as ns:
        fresh_vxlan(ns)
        started = time.perf_counter()
        errors = await table.program(ns, VNI, fdb, [], neigh, [])
        took = time.perf_counter() - started
        if errors:
            raise AssertionError(f"programming the table failed for {len(errors)} entries: {errors[:3]}")
        if await table.read_fdb(ns, VNI) != fdb or await table.read_neighbours(ns, VNI) != neigh:
            raise AssertionError("the kernel's table differs from the table the agent received")
        # The baseline: iproute2's batch mode programming the same entries into a new device.
        fresh_vxlan(ns)
        with tempfile.TemporaryDirectory(prefix="vxbench") as tmp:
            fdb_file, neigh_file = write_batches(tmp, fdb, neigh)
            started = time.perf_counter()
            program_batches(ns, fdb_file, neigh_file)
            baseline = time.perf_counter() - started
    report(BENCH, f"program {len(fdb)} FDB + {len(neigh)} neighbour entries", took, "s",
           limit=PROGRAM_TARGET_S, baseline=baseline, baseline_name="bridge/ip -batch")


if __name__ == "__main__":
    raise SystemExit(main())
