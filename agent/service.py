"""The HostAgent service: what the controller forwards to this host.

exec and logs run here because the container runs here; tables are read
back from this host's kernel, so the user sees what is programmed, not what
should be.
"""
from __future__ import annotations

import asyncio
import logging

import grpc

from agent import names
from agent.kernel import table
from agent.kernel.netns import list_netns
from agent.log_tail import tail_offset
from agent.oci.exec_attached import Input
from agent.oci.model import ContainerError
from agent.oci.runtime import Runtime
from agent.view import View
from proto import validate
from proto.errors import InvalidArgument
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

LOG_CHUNK = 64 * 1024
# How often a followed log is read again while its container runs.
FOLLOW_POLL_SECONDS = 0.1
# How long a `start -a`'s log stream waits for the start it was opened for.
WAIT_START_SECONDS = 60.0


class HostAgentService(pb_grpc.HostAgentServicer):
    def __init__(self, host: str, view: View, runtime: Runtime, on_change=lambda: None):
        self.host = host
        self.view = view
        self.runtime = runtime
        self.on_change = on_change  # wakes the reconcile loop

    def _container_id(self, name: str) -> str:
        spec = self.view.containers().get(name)
        if spec is None:
            raise ContainerError(f"no container {name!r} on host {self.host}")
        return spec.id

    async def Exec(self, request, context):
        try:
            container_id = self._container_id(request.container)
            async for kind, data in self.runtime.exec(container_id, list(request.command), dict(request.env)):
                if kind == "stdout":
                    yield pb.ExecOutput(stdout=data)
                elif kind == "stderr":
                    yield pb.ExecOutput(stderr=data)
                else:
                    yield pb.ExecOutput(exited=True, exit_code=data)
        except ContainerError as err:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))

    async def ExecAttached(self, request_iterator, context):
        """exec -i / -t: the first message starts the command, the rest feed it; with
        first_process (run -i / -t), they feed the container's own process."""
        first = await anext(request_iterator, None)
        if first is None or not first.HasField("start"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "an attached exec starts with its request")
        start = first.start
        inputs: asyncio.Queue[Input] = asyncio.Queue()
        pump = asyncio.create_task(_pump(request_iterator, inputs))
        try:
            container_id = self._container_id(start.container)
            if start.first_process:     # run -i / -t: the container's own process
                output = self.runtime.attach(container_id, (start.rows, start.cols), inputs)
            else:
                output = self.runtime.exec_attached(container_id, list(start.command), dict(start.env), start.tty,
                                                    (start.rows, start.cols), inputs)
            async for kind, data in output:
                if kind == "stdout":
                    yield pb.ExecOutput(stdout=data)
                elif kind == "stderr":
                    yield pb.ExecOutput(stderr=data)
                else:
                    yield pb.ExecOutput(exited=True, exit_code=data)
        except ContainerError as err:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
        finally:
            pump.cancel()

    async def Kill(self, request, context):
        try:
            await self.runtime.kill(self._container_id(request.container), request.signal)
        except ContainerError as err:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
        self.on_change()
        return pb.Empty()

    async def Logs(self, request, context):
        try:
            path = self.runtime.log_path(self._container_id(request.container))
        except ContainerError as err:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        if request.wait_start and not path.exists():
            path.touch(mode=0o600)   # the first start appends to it (agent/oci/monitor.py)
        if not path.exists():
            return
        container_id = self._container_id(request.container)
        try:
            lines = validate.log_tail(request.tail)
        except InvalidArgument as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        with open(path, "rb") as log_file:
            if lines is not None:
                log_file.seek(await asyncio.to_thread(tail_offset, log_file, lines))
            if request.follow and request.wait_start:
                state = await self.runtime.state(container_id)
                before = state.started_at if state is not None else 0.0
                yield pb.LogChunk()   # the log is held: the caller starts the container now
                if not await self._started_after(container_id, before):
                    return
            while True:
                # Whether it runs is asked before reading: what it wrote before
                # stopping is then read to the end before the stream ends.
                running = request.follow and await self._running(container_id)
                if request.follow and not running:
                    await self.runtime.drained(container_id)   # a -t container's last output
                while chunk := await asyncio.to_thread(log_file.read, LOG_CHUNK):
                    yield pb.LogChunk(data=chunk)
                if not running:
                    return
                await asyncio.sleep(FOLLOW_POLL_SECONDS)

    async def _started_after(self, container_id: str, before: float) -> bool:
        """Whether the container starts again (a start time other than `before`)
        within WAIT_START_SECONDS; it may have ended already."""
        deadline = asyncio.get_running_loop().time() + WAIT_START_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            state = await self.runtime.state(container_id)
            if state is not None and state.started_at and state.started_at != before:
                return True
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
        return False

    async def _running(self, container_id: str) -> bool:
        state = await self.runtime.state(container_id)
        return state is not None and state.state == "running"

    async def Tables(self, request, context):
        by_vni = {n.vni: n for n in self.view.networks().values()}
        reply = pb.TablesReply(host=self.host)
        prefix = names.netns_prefix(self.host) + "ov"
        for netns in sorted(list_netns(prefix)):
            vni = int(netns[len(prefix):])
            network = by_vni.get(vni)
            network_name = network.name if network else ""
            if request.network and request.network != network_name:
                continue
            fdb = await table.read_fdb(netns, vni)
            neighbours = await table.read_neighbours(netns, vni)
            ip_of = {mac: ip for ip, mac in neighbours.items()}
            for mac in sorted(set(fdb) | set(ip_of)):
                reply.entries.append(pb.TableEntry(network=network_name, vni=vni, mac=mac,
                                                   ip=ip_of.get(mac, ""), vtep=fdb.get(mac, "")))
        return reply


async def _pump(requests, inputs: asyncio.Queue[Input]) -> None:
    """The user's input as it arrives; the stream's end is the end of input."""
    async for message in requests:
        inputs.put_nowait(Input(data=message.stdin, rows=message.rows, cols=message.cols,
                                closed=message.stdin_closed))
    inputs.put_nowait(Input(closed=True))
