"""The AgentLink service: one long-lived stream per agent.

Up the stream come the agent's hello (register), heartbeats (keep its lease
alive), container status reports and what its probes of its peers' VTEPs
found (controller/liveness.py); down it goes the agent's view: a
snapshot or a resumed delta, then a delta per etcd revision that touches it,
and keepalives while there is nothing to say (controller/agent_feed.py).
Whatever ends a stream, the agent gets a status, so it reconnects.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator

import grpc

from controller.agent_feed import KEEPALIVE_SECONDS, QUEUE_LIMIT, AgentFeed, FeedCounters
from controller.agent_leases import AgentLeases, Holding
from controller import request_limits
from controller.cache import StateCache
from controller import liveness
from controller.liveness import DEFAULT_GRACE_SECONDS
from proto.errors import InvalidArgument, UserError
from proto import validate
from proto.addresses import OVERLAY_FAMILIES, UNDERLAY_FAMILIES, parse_host_port, parse_ip, parse_subnet
from controller.store import Store
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ContainerStatus, Host, Reachability
from transport.tls import peer_identity

log = logging.getLogger(__name__)


def add_to_server(service: AgentLinkService, server: grpc.aio.Server) -> None:
    """Serve AgentLink as the generated code would, but with updates sent as the
    bytes the feed already serialized once for every stream (wire_changes.py)."""
    handlers = {"Connect": grpc.stream_stream_rpc_method_handler(
        service.Connect, request_deserializer=pb.AgentMessage.FromString, response_serializer=_serialized)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


SERVICE = pb.DESCRIPTOR.services_by_name["AgentLink"].full_name


def _serialized(message: pb.ControllerMessage | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


class AgentRefused(Exception):
    """The agent broke the protocol: its stream ends with INVALID_ARGUMENT and this message."""


class AgentLinkService(pb_grpc.AgentLinkServicer):
    def __init__(self, store: Store, cache: StateCache, host_ttl: int,
                 counters: FeedCounters | None = None, queue_limit: int = QUEUE_LIMIT,
                 keepalive: float = KEEPALIVE_SECONDS, grace: float = DEFAULT_GRACE_SECONDS):
        self.store = store
        self.cache = cache
        self.host_ttl = host_ttl
        self.counters = counters if counters is not None else FeedCounters()
        self.queue_limit = queue_limit
        self.keepalive = keepalive
        self.grace = grace
        # Every agent's agents/<host> key under one lease of this controller's.
        self.leases = AgentLeases(store, host_ttl)

    async def close(self) -> None:
        await self.leases.close()

    async def Connect(self, request_iterator, context) -> AsyncIterator[pb.ControllerMessage | bytes]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("kind") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message on the stream must be a hello")
        hello = first.hello
        host = Host.from_wire(hello.host)
        too_big = request_limits.hello_problem(hello)
        if too_big is not None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid hello: {too_big}")
        problem = host_problem(host)
        if problem is not None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid host in hello: {problem}")
        # Over TLS an agent is the host its certificate names (transport/authz.py
        # let only agent certificates in): it registers, reports and receives
        # tables as that host alone. A unix-socket peer has no certificate.
        identity = peer_identity(context)
        if identity is not None and identity.name != host.name:
            log.warning("refused agent %s registering as host %r", identity, host.name)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"this certificate is for host {identity.name!r}; "
                                f"it cannot register as {host.name!r}")
        host.registered_at = time.time()
        try:
            await self.store.register_host(host)
            holding = await self.leases.attach(host.name)
            # Into the tables now (or back to "up" from "agent down"), unless
            # its peers find its VTEP silent. Asked of the mirror first: an
            # agent back within host_ttl (a reconnect storm) is up already, and
            # settling in etcd reads every peer's report. A mirror that lags
            # is the liveness keeper's to correct, within its pass.
            index = self.cache.index
            if not liveness.stays_up(host.name, index.alive_records.get(host.name), index.connected, index.reach):
                await self.store.settle(host.name, self.grace)
        except UserError as err:
            await context.abort(err.code, str(err))
        log.info("agent %s connected (vtep %s, resume from %d)", host.name, host.vtep, hello.resume_revision)

        feed = AgentFeed(host.name, hello, self.cache, self.counters, self.queue_limit, self.keepalive)
        producer = asyncio.create_task(feed.run(), name=f"feed-{host.name}")
        reader = asyncio.create_task(self._read(holding, set(hello.containers), request_iterator),
                                     name=f"reader-{host.name}")
        self.counters.connected += 1
        # Either task ending (the agent's side closed, a report could not be
        # stored, the feed failed) interrupts the wait for the next message.
        # So does the controller's lease failing (agent_leases.py).
        reader.add_done_callback(feed.interrupt)
        producer.add_done_callback(feed.interrupt)
        holding.lost.add_done_callback(feed.interrupt)
        try:
            while (message := await feed.next()) is not None:
                yield message
            if holding.lost.done():
                reader.cancel()   # ends with the lease's error rather than the agent's side
                await asyncio.gather(reader, return_exceptions=True)
                reader = holding.lost
            # End the stream with a status the agent sees, so it reconnects (to
            # us or another controller) and resumes. Cancelling the handler
            # instead would leave the agent waiting on a stream that never says
            # it is over.
            await self._end_stream(host.name, reader if reader.done() else producer, context)
        finally:
            self.counters.connected -= 1
            holding.lost.remove_done_callback(feed.interrupt)
            for task in (reader, producer):
                task.cancel()
            await asyncio.gather(reader, producer, return_exceptions=True)
            # The key stays until host_ttl after the last heartbeat rather than
            # going now: an agent that restarts within it never shows as down.
            self.leases.detach(holding)
            log.info("agent %s disconnected", host.name)

    @staticmethod
    async def _end_stream(host: str, ended: asyncio.Future, context) -> None:
        # Only the handler's task aborts: an abort from the reader's task
        # would race the handler's own writes on the call.
        err = ended.exception()
        if err is None:
            return  # the agent closed its side: a clean end
        if isinstance(err, AgentRefused):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        log.warning("ending the stream of agent %s: %s", host, err)
        code = err.code if isinstance(err, UserError) else grpc.StatusCode.UNAVAILABLE
        await context.abort(code, f"controller dropped the stream of {host}: {err}")

    async def _read(self, holding: Holding, held: set[str], request_iterator) -> None:
        host = holding.host
        # Here rather than before the stream starts: with thousands of
        # containers it reads every allocation, and the agent's snapshot need
        # not wait for it. Reports are read only after it, as before.
        await self._release_forgotten(host, held)
        async for msg in request_iterator:
            kind = msg.WhichOneof("kind")
            if kind == "heartbeat":
                # No etcd call: the heartbeat's time is noted, and the sweep
                # (agent_leases.py) deletes the host's key once they stop.
                if not self.leases.beat(holding):
                    log.warning("agent %s beats again after its key was deleted; marking it connected", host)
                    await self.leases.remark(holding)
                    await self.store.settle(host, self.grace)
            elif kind == "reachability":
                report = Reachability.from_wire(msg.reachability)
                problem = reachability_problem(host, report)
                if problem is not None:
                    log.warning("agent %s sent an invalid reachability report: %s", host, problem)
                    raise AgentRefused(f"invalid reachability report: {problem}")
                await self.leases.put_reach(holding, report)
            elif kind == "status":
                status = ContainerStatus.from_wire(msg.status)
                problem = status_problem(status)
                if problem is not None:
                    # A misbehaving agent: tell it why and end its stream; etcd is untouched.
                    log.warning("agent %s sent an invalid status: %s", host, problem)
                    raise AgentRefused(f"invalid status report: {problem}")
                await self._on_status(host, status)
            else:
                raise AgentRefused(f"unexpected message {kind!r} on an established stream")

    async def _on_status(self, host: str, status: ContainerStatus) -> None:
        status.host = host
        if status.state != "removed" and self.cache.index.statuses.get(status.name) == status:
            # Already stored (a resync, a new stream): every status of a host
            # comes again then, and each write is an etcd round trip.
            return
        if status.state == "removed":
            # The agent tore it down: only now may its addresses go to others.
            await self.store.release_container(status.name, host)
        elif not await self.store.put_status(host, status):
            log.info("ignored a status for %s from %s: not a container of that host", status.name, host)

    async def _release_forgotten(self, host: str, held: set[str]) -> None:
        """Release containers removed while their agent was away and no longer held by it."""
        if not self.cache.index.has_orphan_statuses():
            # Nothing was removed without its host confirming (as the mirror
            # shows): skip reading every allocation from etcd.
            return
        for name in await self.store.pending_releases(host):
            if name not in held:
                await self.store.release_container(name, host)


STATES = ("created", "running", "exited", "removed")
MAX_ERROR_TEXT = 4096


def host_problem(host: Host) -> str | None:
    """What is wrong with a host record from an agent's hello, or None."""
    try:
        validate.host_name(host.name)
    except InvalidArgument as err:
        return str(err)
    try:
        parse_ip(host.vtep, "vtep", UNDERLAY_FAMILIES)
    except InvalidArgument:
        return f"vtep {host.vtep!r} of host {host.name!r} is not an IPv4 address"
    if host.api:
        try:
            parse_host_port(host.api)
        except InvalidArgument:
            return f"api {host.api!r} of host {host.name!r} is not HOST:PORT"
    try:
        validate.underlay_mtu(host.mtu)
    except InvalidArgument:
        return (f"underlay MTU {host.mtu} of host {host.name!r} is outside "
                f"{validate.UNDERLAY_MTU_MIN}..{validate.MTU_MAX}")
    # The host's own subnets: networks are kept off them (controller/store/networks.py).
    for what, subnet, families in (("bridge subnet", host.bridge_subnet, OVERLAY_FAMILIES),
                                   ("gwbridge subnet", host.gwbridge_subnet, OVERLAY_FAMILIES),
                                   ("underlay subnet", host.underlay_subnet, UNDERLAY_FAMILIES)):
        if subnet:
            try:
                parse_subnet(subnet, what, families, bounded=False)
            except InvalidArgument:
                return f"{what} {subnet!r} of host {host.name!r} is not an IPv4 network"
    return None


# More peers than any cluster has hosts: a report past it is a misbehaving agent's.
MAX_REACH_PEERS = 10_000


def reachability_problem(host: str, report: Reachability) -> str | None:
    """What is wrong with a reachability report from the agent of `host`, or None."""
    if report.reporter != host:
        return f"host {host!r} reported as {report.reporter[:80]!r}"
    if len(report.reachable) + len(report.unreachable) > MAX_REACH_PEERS:
        return f"more than {MAX_REACH_PEERS} peers"
    for name in (*report.reachable, *report.unreachable):
        try:
            validate.host_name(name)
        except InvalidArgument as err:
            return str(err)
    return None


def status_problem(status: ContainerStatus) -> str | None:
    """What is wrong with a container status from an agent, or None."""
    try:
        validate.name("container", status.name)
    except UserError as err:
        return str(err)
    if status.state not in STATES:
        return f"container {status.name!r}: unknown state {status.state!r}"
    if status.id:
        try:
            validate.object_id("container", status.id)
        except InvalidArgument:
            return f"container {status.name!r}: id {status.id[:80]!r} is not 64 hex characters"
    if status.pid < 0 or not 0 <= status.exit_code <= 255:
        return f"container {status.name!r}: pid {status.pid} or exit code {status.exit_code} out of range"
    if len(status.error) > MAX_ERROR_TEXT:
        return f"container {status.name!r}: error text of {len(status.error)} characters"
    for network in status.networks:
        try:
            validate.name("network", network)
        except UserError as err:
            return str(err)
    return None
