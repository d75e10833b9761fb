"""The AgentLink service: one long-lived stream per agent.

Up the stream come the agent's hello (register), heartbeats (keep its lease
alive) and container status reports; down it goes the agent's view: a
snapshot or a resumed delta, then a delta per etcd revision that touches it.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import AsyncIterator

import grpc

from controller.cache import StateCache
from controller.errors import UserError
from controller.ipam import validate_name
from controller.store import Store
from controller.view import AgentView, Change
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ContainerStatus, Host
from agent.names import validate_host_name

log = logging.getLogger(__name__)

# How long the controller waits for its cache to reach a revision an agent
# already has (the agent came from a controller that was ahead of this one).
CATCH_UP_SECONDS = 2.0


class AgentLinkService(pb_grpc.AgentLinkServicer):
    def __init__(self, store: Store, cache: StateCache, host_ttl: int):
        self.store = store
        self.cache = cache
        self.host_ttl = host_ttl

    async def Connect(self, request_iterator, context) -> AsyncIterator[pb.ControllerMessage]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("kind") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message on the stream must be a hello")
        hello = first.hello
        host = Host.from_wire(hello.host)
        problem = host_problem(host)
        if problem is not None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid host in hello: {problem}")
        host.registered_at = time.time()
        try:
            await self.store.register_host(host)
            lease = await self.store.mark_alive(host.name, self.host_ttl)
            await self._release_forgotten(host.name, set(hello.containers))
        except UserError as err:
            await context.abort(err.code, str(err))
        log.info("agent %s connected (vtep %s, resume from %d)", host.name, host.vtep, hello.resume_revision)

        reader = asyncio.create_task(self._read(host.name, lease, request_iterator, context))
        # When the agent's side ends (or a report cannot be stored) the whole
        # stream ends, so the agent reconnects and resumes.
        stream_task = asyncio.current_task()
        def end_stream(_):
            stream_task.cancel()
        reader.add_done_callback(end_stream)
        try:
            async for update in self._updates(host.name, hello):
                yield pb.ControllerMessage(update=update)
        finally:
            reader.remove_done_callback(end_stream)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            # The lease is left to expire (host_ttl) rather than revoked: an
            # agent that restarts within it never has its endpoints withdrawn
            # from the other hosts, so its containers' traffic does not stop.
            log.info("agent %s disconnected", host.name)

    async def _updates(self, host: str, hello: pb.Hello) -> AsyncIterator[pb.ViewUpdate]:
        """The agent's view: resumed or snapshot first, then deltas as etcd moves."""
        view, update, revision = await self._first_update(host, hello)
        yield update
        while True:
            await self.cache.wait_beyond(revision)
            batches = self.cache.batches_since(revision)
            if batches is None:  # this agent fell behind the kept history
                view = AgentView(host, self.cache.index)
                revision = self.cache.revision
                yield _update(revision, view.snapshot(), snapshot=True)
                continue
            changes: list[Change] = []
            for _, events in batches:
                changes += view.changes(events)
            revision = self.cache.revision
            if changes:
                yield _update(revision, changes)

    async def _first_update(self, host: str, hello: pb.Hello) -> tuple[AgentView, pb.ViewUpdate, int]:
        resume = hello.resume_revision
        if resume > 0:
            if resume > self.cache.revision:
                await self.cache.wait_until(lambda: self.cache.revision >= resume, CATCH_UP_SECONDS)
            batches = self.cache.batches_since(resume)
            if batches is not None and resume <= self.cache.revision:
                view = AgentView(host, self.cache.index, hello.networks)
                changes: list[Change] = []
                for _, events in batches:
                    changes += view.changes(events)
                changes += view.sync_membership()
                return view, _update(self.cache.revision, changes), self.cache.revision
        view = AgentView(host, self.cache.index)
        return view, _update(self.cache.revision, view.snapshot(), snapshot=True), self.cache.revision

    async def _read(self, host: str, lease: int, request_iterator, context) -> None:
        async for msg in request_iterator:
            kind = msg.WhichOneof("kind")
            if kind == "heartbeat":
                if not await self.store.keep_alive(lease):
                    log.warning("lease of %s expired; re-marking it alive", host)
                    lease = await self.store.mark_alive(host, self.host_ttl)
            elif kind == "status":
                status = ContainerStatus.from_wire(msg.status)
                problem = status_problem(status)
                if problem is not None:
                    # A misbehaving agent: tell it why and end its stream; etcd is untouched.
                    log.warning("agent %s sent an invalid status: %s", host, problem)
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid status report: {problem}")
                await self._on_status(host, status)
            else:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"unexpected message {kind!r} on an established stream")

    async def _on_status(self, host: str, status: ContainerStatus) -> None:
        status.host = host
        if status.state == "removed":
            # The agent tore it down: only now may its addresses go to others.
            await self.store.release_container(status.name, host)
        elif not await self.store.put_status(host, status):
            log.info("ignored a status for %s from %s: not a container of that host", status.name, host)

    async def _release_forgotten(self, host: str, held: set[str]) -> None:
        """Release containers removed while their agent was away and no longer held by it."""
        for name in await self.store.pending_releases(host):
            if name not in held:
                await self.store.release_container(name, host)


def _update(revision: int, changes: list[Change], snapshot: bool = False) -> pb.ViewUpdate:
    return pb.ViewUpdate(revision=revision, snapshot=snapshot, changes=[c.to_wire() for c in changes])


STATES = ("created", "running", "exited", "removed")
MAX_ERROR_TEXT = 4096


def host_problem(host: Host) -> str | None:
    """What is wrong with a host record from an agent's hello, or None."""
    try:
        validate_host_name(host.name)
    except ValueError as err:
        return str(err)
    try:
        ipaddress.IPv4Address(host.vtep)
    except ValueError:
        return f"vtep {host.vtep!r} of host {host.name!r} is not an IPv4 address"
    if host.api:
        address, _, port = host.api.rpartition(":")
        if not address or len(address) > 255 or not port.isdigit() or not 0 < int(port) < 65536:
            return f"api {host.api!r} of host {host.name!r} is not HOST:PORT"
    if not 576 <= host.mtu <= 65535:
        return f"underlay MTU {host.mtu} of host {host.name!r} is outside 576..65535"
    if host.bridge_subnet:
        try:
            ipaddress.IPv4Network(host.bridge_subnet)
        except ValueError:
            return f"bridge subnet {host.bridge_subnet!r} of host {host.name!r} is not an IPv4 network"
    return None


def status_problem(status: ContainerStatus) -> str | None:
    """What is wrong with a container status from an agent, or None."""
    try:
        validate_name("container", status.name)
    except UserError as err:
        return str(err)
    if status.state not in STATES:
        return f"container {status.name!r}: unknown state {status.state!r}"
    if status.id and (len(status.id) != 64 or any(c not in "0123456789abcdef" for c in status.id)):
        return f"container {status.name!r}: id {status.id[:80]!r} is not 64 hex characters"
    if status.pid < 0 or not 0 <= status.exit_code <= 255:
        return f"container {status.name!r}: pid {status.pid} or exit code {status.exit_code} out of range"
    if len(status.error) > MAX_ERROR_TEXT:
        return f"container {status.name!r}: error text of {len(status.error)} characters"
    for network in status.networks:
        try:
            validate_name("network", network)
        except UserError as err:
            return str(err)
    return None
