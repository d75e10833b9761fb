"""No status is lost for good: a report dropped on its way (the link's test hook)
reaches the controller when a controller asks the agent to resync, and on the
agent's next stream. A controller in this process on the module's etcd, and
the agent's real link (agent/link.py) to it."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import grpc
import pytest

from agent.link import ControllerLink
from agent.view import View
from controller.server import ControllerConfig, serve
from controller.store import Store
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ContainerStatus, Host
from tests.helpers.controller_ready import wait_healthy

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def state_of(store: Store, name: str) -> str:
    _, status = await store.get_container(name)
    return status.state if status is not None else ""


async def eventually(predicate, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_dropped_status_arrives_on_the_next_resync_and_the_next_stream(etcd_server, etcd, prefix):
    work = Path(tempfile.mkdtemp(prefix="vxmesh-test-resync-"))
    socket = f"unix://{work}/ctl.sock"
    server = asyncio.create_task(serve(ControllerConfig(listen=[socket], etcd=[etcd_server.endpoint], prefix=prefix,
                                                        host_ttl=3, insecure=True)))
    dropping = {"c1"}
    dropped: list[str] = []

    def drop(message: pb.AgentMessage) -> bool:
        if message.WhichOneof("kind") == "status" and message.status.name in dropping:
            dropped.append(message.status.state)
            return True
        return False

    link = ControllerLink([socket], Host(name="hr", vtep="192.0.2.9", api="192.0.2.9:7947"), View("hr"),
                          on_update=lambda: None, held_containers=lambda: [], drop=drop)
    linking = None
    try:
        async with grpc.aio.insecure_channel(socket) as channel:
            assert await wait_healthy(pb_grpc.ControllerStub(channel), 30)
        linking = asyncio.create_task(link.run())
        await asyncio.wait_for(link.connected.wait(), 30)
        store = Store(etcd, prefix)
        spec = await store.create_container("c1", "hr", ["true"], {}, "", ["none"])
        link.report(ContainerStatus(name="c1", id=spec.id, state="running", generation=spec.generation))

        # Control: the report was lost, and nothing sends it again by itself.
        await asyncio.sleep(2.0)
        assert dropped == ["running"] and await state_of(store, "c1") == "created"

        # A controller asks (as the API does when a wait runs long): the agent resends.
        dropping.clear()
        await store.ask_resync("hr")
        assert await eventually(lambda: _is(store, "c1", "running"), 10), "the resync never brought the status"

        # A new stream re-sends every status too: the next report is lost, the stream breaks.
        dropping.add("c1")
        link.report(ContainerStatus(name="c1", id=spec.id, state="exited", generation=spec.generation))
        await asyncio.sleep(1.0)
        assert await state_of(store, "c1") == "running"
        dropping.clear()
        connected_before = link.connected
        linking.cancel()
        await asyncio.gather(linking, return_exceptions=True)
        assert connected_before.is_set()
        linking = asyncio.create_task(link.run())
        assert await eventually(lambda: _is(store, "c1", "exited"), 15), "the new stream never brought the status"
    finally:
        if linking is not None:
            linking.cancel()
            await asyncio.gather(linking, return_exceptions=True)
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        shutil.rmtree(work, ignore_errors=True)


async def _is(store: Store, name: str, state: str) -> bool:
    return await state_of(store, name) == state
