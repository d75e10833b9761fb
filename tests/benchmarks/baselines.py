"""Baselines measured in the same run as the figures they calibrate.

On a shared, noisy machine an absolute latency says little; its ratio to
the cheapest operation the same path cannot avoid says more:
  - an etcd put -> watch round trip: a write committed and seen by a watcher,
    the floor under any propagation through etcd;
  - an idle gRPC echo (the controller's Health, which answers from memory
    after one etcd read): the floor under any user API call.
"""
from __future__ import annotations

import asyncio
import time

from controller.etcd import Etcd
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from tests.benchmarks.figures import median

PROBE_PREFIX = "/vxbench-probe/"


async def etcd_put_watch_ms(etcd: Etcd, samples: int = 50) -> float:
    """Median milliseconds from a put to its event reaching a watcher."""
    arrived: asyncio.Queue[float] = asyncio.Queue()
    start = await etcd.revision() + 1

    async def follow() -> None:
        async for _, events in etcd.watch(PROBE_PREFIX, start):
            for _ in events:
                arrived.put_nowait(time.perf_counter())

    watcher = asyncio.create_task(follow())
    try:
        await asyncio.sleep(0.2)  # the watch is registered before the first put
        times = []
        for i in range(samples):
            sent = time.perf_counter()
            await etcd.put(f"{PROBE_PREFIX}{i}", b"x")
            times.append((await asyncio.wait_for(arrived.get(), 10) - sent) * 1000)
        return median(times)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await etcd.delete_prefix(PROBE_PREFIX)


async def grpc_echo_ms(api: pb_grpc.ControllerStub, samples: int = 50) -> float:
    """Median milliseconds of a Health call to the controller."""
    times = []
    for _ in range(samples):
        sent = time.perf_counter()
        await api.Health(pb.Empty(), timeout=10)
        times.append((time.perf_counter() - sent) * 1000)
    return median(times)
