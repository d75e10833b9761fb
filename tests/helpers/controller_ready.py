"""Waiting for a controller started by a test or benchmark to serve its API."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Callable

import grpc

from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc


async def wait_healthy(api: pb_grpc.ControllerStub, seconds: float,
                       check_alive: Callable[[], None] = lambda: None) -> bool:
    """Poll Health until the controller says healthy (True) or `seconds` pass
    (False). Its socket answers before its services are wired, and its etcd
    may still be starting, so refusals in between are expected.
    `check_alive()` raises if whatever runs the controller has died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        check_alive()
        with contextlib.suppress(grpc.aio.AioRpcError):
            if (await api.Health(pb.Empty(), timeout=2)).healthy:
                return True
        await asyncio.sleep(0.1)
    return False
