"""The agents' stream under misuse: a controller in this process (with its own
private etcd) faced with misbehaving gRPC clients."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from controller.agent_link import host_problem, status_problem
from controller.server import MAX_MESSAGE_BYTES, ControllerConfig, serve
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ContainerStatus, Host
from tests.helpers.controller_ready import wait_healthy

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def controller():
    work = Path(tempfile.mkdtemp(prefix="vxmesh-test-link-"))
    socket = f"unix://{work}/ctl.sock"
    # Plain text on a unix socket: these tests are about the stream's rules, not TLS (test_tls.py).
    task = asyncio.create_task(serve(ControllerConfig(listen=[socket], data_dir=work / "etcd", host_ttl=3,
                                                      insecure=True)))
    channel = grpc.aio.insecure_channel(socket)
    try:
        await asyncio.wait_for(channel.channel_ready(), 30)
        assert await wait_healthy(pb_grpc.ControllerStub(channel), 30), "the test controller never got healthy"
        yield channel
    finally:
        await channel.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        shutil.rmtree(work, ignore_errors=True)


def hello(name: str, **host) -> pb.AgentMessage:
    record = Host(name=name, vtep=host.pop("vtep", "192.0.2.1"), api="192.0.2.1:7947", **host)
    return pb.AgentMessage(hello=pb.Hello(host=record.to_wire()))


async def stream_error(channel, *messages) -> grpc.aio.AioRpcError:
    call = pb_grpc.AgentLinkStub(channel).Connect(timeout=10)
    for message in messages:
        await call.write(message)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    return err.value


@pytest.mark.asyncio(loop_scope="module")
async def test_host_and_status_checks_name_the_problem():
    good = Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7947")
    assert host_problem(good) is None
    assert "not an IPv4 address" in host_problem(Host(name="h1", vtep="10.0.0.300"))
    assert "invalid host name" in host_problem(Host(name="H 1", vtep="192.0.2.1"))
    assert "not HOST:PORT" in host_problem(Host(name="h1", vtep="192.0.2.1", api="nowhere"))
    assert "outside 118..65535" in host_problem(Host(name="h1", vtep="192.0.2.1", mtu=40))
    ok = ContainerStatus(name="c1", id="a" * 64, state="running")
    assert status_problem(ok) is None
    for bad, message in ((ContainerStatus(name="c1", id="", state="dancing"), "unknown state"),
                         (ContainerStatus(name="../x", id=""), "invalid container name"),
                         (ContainerStatus(name="c1", id="xyz"), "not 64 hex"),
                         (ContainerStatus(name="c1", id="", exit_code=999), "out of range"),
                         (ContainerStatus(name="c1", id="", networks=["bad net"]), "invalid network name")):
        assert message in status_problem(bad)


async def test_misbehaving_agents_get_clear_errors_and_change_nothing(controller):
    api = pb_grpc.ControllerStub(controller)
    before = (await api.ListHosts(pb.Empty(), timeout=5)).hosts
    err = await stream_error(controller, pb.AgentMessage(heartbeat=pb.Heartbeat()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "must be a hello" in err.details()
    err = await stream_error(controller, hello("h-bad", vtep="not-an-ip"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "not an IPv4 address" in err.details()
    assert (await api.ListHosts(pb.Empty(), timeout=5)).hosts == before
    # A registered agent reporting nonsense loses its stream; no status is stored.
    err = await stream_error(controller, hello("h-liar"), pb.AgentMessage(
        status=pb.ContainerStatus(name="ghost", id="", state="teleported")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown state 'teleported'" in err.details()
    listed = (await api.ListContainers(pb.ListContainersRequest(all=True), timeout=5)).containers
    assert all(c.spec.name != "ghost" for c in listed)
    # An oversized message is refused by gRPC itself before we buffer it.
    huge = pb.AgentMessage(status=pb.ContainerStatus(name="c1", error="x" * (MAX_MESSAGE_BYTES + 1)))
    err = await stream_error(controller, hello("h-huge"), huge)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
