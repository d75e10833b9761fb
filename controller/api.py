"""The Controller service: the user API the CLI speaks.

State changes go to etcd through the Store (transactions); waiting for an
agent to act goes through the cache, which sees the agent's status reports.
Container operations that must run on the container's host (exec, logs,
kernel tables) are forwarded to that host's agent.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import AsyncIterator

import grpc

from controller import request_limits, run_options
from controller.agent_feed import FeedCounters
from controller.cache import StateCache
from controller.drivers import DEFAULT_DRIVER
from controller.generated_names import generated_name
from controller.host_view import hosts_from_index
from controller.images.cluster_images import ClusterImages
from controller.images.service import NO_REGISTRY
from controller.store import Store
from controller.user_errors import bounded, user_errors, user_errors_streaming
from proto import timing, validate
from proto.errors import FailedPrecondition, ImageError, InvalidArgument, NotFound, OutcomeUnknown, Unavailable, UserError
from proto.network_mode import NetworkMode
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ContainerSpec, ContainerStatus
from transport.channels import Transport

log = logging.getLogger(__name__)

# How long `run` waits for the agent to report the container running.
START_TIMEOUT = 30.0
# How long a wait for an agent's report lasts before the agent is asked to
# report every status again (a report lost with a stream or a controller).
RESYNC_AFTER = 5.0
# How long `rm` waits for the agent to confirm the teardown.
REMOVE_TIMEOUT = 15.0
# How long `run` waits for the controller's mirror of etcd to catch up before reading etcd instead.
MIRROR_CATCH_UP_SECONDS = 2.0
# How long Health waits for etcd to answer a read before calling it unhealthy.
HEALTH_READ_SECONDS = 3.0


class ControllerService(pb_grpc.ControllerServicer):
    def __init__(self, store: Store, cache: StateCache, feeds: FeedCounters | None = None, *,
                 agent_transport: Transport, images: ClusterImages | None = None):
        self.store = store
        self.cache = cache
        self.images = images                     # the cluster's registry; None: no images
        self.feeds = feeds if feeds is not None else FeedCounters()
        self.agent_transport = agent_transport   # how to reach the agents' HostAgent APIs
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    # ---- networks ----------------------------------------------------------

    @user_errors
    async def CreateNetwork(self, request, context):
        request_limits.check_network_options(request.options)
        network = await self.store.create_network(
            request.name, request.subnet, gateway=request.gateway, vni=request.vni,
            driver=request.driver or DEFAULT_DRIVER, options=dict(request.options), ip_range=request.ip_range,
            internal=request.internal, attachable=request.attachable, labels=dict(request.labels),
            request_id=request.request_id)
        return network.to_wire()

    @user_errors
    async def ListNetworks(self, request, context):
        return pb.NetworkList(networks=[n.to_wire() for n in await self.store.list_networks()])

    @user_errors
    async def InspectNetwork(self, request, context):
        request.name = await self._network_name(request.name)
        network = await self.store.get_network(request.name)
        endpoints = await self.store.network_endpoints(request.name)
        return pb.NetworkDetail(network=network.to_wire(), endpoints=[e.to_wire() for e in endpoints])

    @user_errors
    async def RemoveNetwork(self, request, context):
        done = await self.store.request_done(request.request_id)
        if done is not None and request.name and done.network_id.startswith(request.name):
            request.name = done.name   # the id (prefix) the first try resolved, of a network gone since
        else:
            request.name = await self._network_name(request.name)
        await self.store.remove_network(request.name, request.request_id)
        return pb.Empty()

    # ---- health ------------------------------------------------------------

    async def Health(self, request, context):
        """Healthy while the watch follows etcd and etcd answers a read now."""
        detail = "" if self.cache.healthy else "the etcd watch is down; retrying"
        if not detail:
            try:
                # Bounded: without a quorum etcd does not refuse, it waits.
                await asyncio.wait_for(self.store.etcd.revision(), HEALTH_READ_SECONDS)
            except asyncio.TimeoutError:
                detail = f"etcd did not answer a read within {HEALTH_READ_SECONDS:.0f}s"
            except Exception as err:  # any failure to read is the answer itself
                detail = f"etcd is unreachable: {err}"
        return pb.HealthReply(healthy=not detail, revision=self.cache.revision, detail=detail,
                              snapshots_served=self.feeds.snapshots, resumes_served=self.feeds.resumes,
                              resyncs_served=self.feeds.resyncs, agents_connected=self.feeds.connected)

    # ---- hosts -------------------------------------------------------------

    @user_errors
    async def ListHosts(self, request, context):
        return pb.HostList(hosts=[h.to_wire() for h in await self.store.list_hosts()])

    @user_errors
    async def HostTables(self, request, context):
        stub = await self._agent(request.host)
        return await _forward(stub.Tables(pb.TablesRequest(network=request.network), timeout=30))

    # ---- containers --------------------------------------------------------

    @user_errors
    async def Run(self, request, context):
        received = time.time()
        request_limits.check_run(request)
        # A repeat of a run already carried out (its client lost the answer):
        # the first one's container, as its start turns out.
        done = await self.store.request_done(request.request_id)
        if done is not None:
            return await self._started(await self.store.made_by(done, request.name or done.name), first=True)
        # Ids and unique id prefixes name networks, and containers in container:NAME, too.
        request.networks[:] = [
            f"container:{await self._container_name(n[len('container:'):])}" if n.startswith("container:")
            else await self._network_name(n) for n in request.networks]
        mode = NetworkMode.parse(request.networks)
        options = run_options.from_request(request)
        run_options.check_options(options, mode)
        # From the controller's mirror (see host_view.py). It may trail etcd by
        # a moment (a host that just connected), so before refusing, it is
        # brought up to etcd's revision, or etcd itself is asked.
        hosts = hosts_from_index(self.cache.index)
        owner = await self._namespace_owner(mode.container) if mode.shares_container else None
        # A shared network namespace exists on one host only: go where it is.
        wanted = request.host or (owner.host if owner else "")
        if not _usable(hosts, wanted):
            now = await self.store.etcd.revision()
            if await self.cache.wait_until(lambda: self.cache.revision >= now, MIRROR_CATCH_UP_SECONDS):
                hosts = hosts_from_index(self.cache.index)
            else:
                hosts = {h.name: h for h in await self.store.list_hosts()}
        host = wanted or _least_loaded(hosts.values())
        if host not in hosts:
            raise NotFound(f"no such host: {host!r}")
        if hosts[host].state != "up":
            raise FailedPrecondition(_not_up(host, hosts[host].state))
        # The image must be in the registry before anything is stored; every
        # start of the container then pulls exactly this manifest.
        if self.images is None:
            raise FailedPrecondition(NO_REGISTRY)
        options = run_options.with_image(options, await self.images.resolve(request.image))
        run_options.check_options(options, mode)     # -P's ports among the rest
        if not request.name:
            # As Docker: a generated name (a lost race on it is the usual "already exists").
            request.name = generated_name({spec.name for spec, _ in await self.store.list_containers()})
        spec = await self.store.create_container(
            request.name, host, list(request.command), dict(request.env),
            request.hostname or request.name, mode, options, request_id=request.request_id)
        committed = time.time()
        try:
            detail = await self._started(spec, first=True)
        except ImageError:
            raise   # _started took the container away already
        except FailedPrecondition:
            if request.auto_remove:   # --rm: a start that failed leaves nothing
                await self._remove(spec)
            raise
        # Wall-clock stamps the agents' start events can be lined up with
        # (tests/benchmarks/bench_attach.py does).
        timing.emit(log, timing.RUN, container=spec.name, host=host, received=received,
                    committed=committed, running=time.time())
        return detail

    async def _namespace_owner(self, name: str) -> ContainerSpec:
        """For --network container:NAME: NAME's spec, which must be running."""
        try:
            owner, status = await self.store.get_container(name)
        except NotFound:
            raise NotFound(f"--network container:{name}: no such container {name!r}") from None
        if status is None or status.state != "running":
            raise FailedPrecondition(
                f"--network container:{name}: cannot join the network of container {name!r}: it is not running")
        return owner

    async def _started(self, spec: ContainerSpec, first: bool = False) -> pb.ContainerDetail:
        """Wait for the agent to report the start, and turn a failed start into an error.
        A first start whose image the host could not pull takes the container away
        again: for the user, `run` failed and made nothing."""
        status, done = await self._wait_status(spec, lambda s: s.state in ("running", "exited") or bool(s.error),
                                               START_TIMEOUT)
        if not done:
            raise OutcomeUnknown(
                f"the outcome is unknown: host {spec.host!r} has not confirmed that container "
                f"{spec.name!r} started within {START_TIMEOUT:.0f}s; it may still start. "
                f"Check with `vxmesh inspect {spec.name}`")
        if status is not None and status.error:
            if first and status.image_error:
                await self._remove(spec)
                raise ImageError(status.error)
            raise FailedPrecondition(f"container {spec.name!r} failed to start: {status.error}")
        return _detail(spec, status)

    @user_errors
    async def Start(self, request, context):
        done = await self.store.request_done(request.request_id)
        if done is not None:
            # The name the first try resolved an id prefix to.
            name = done.name if request.name and done.container_id.startswith(request.name) else request.name
            return await self._started(await self.store.made_by(done, name))
        request.name = await self._container_name(request.name)
        spec, status = await self.store.get_container(request.name)
        _not_engines(spec, "start")
        if status is not None and status.state == "running":
            return _detail(spec, status)  # as Docker: starting a running container is a no-op
        mode = NetworkMode.of(spec)
        if mode.shares_container:
            await self._namespace_owner(mode.container)
        spec = await self.store.set_desired(request.name, "running", bump_generation=True,
                                            request_id=request.request_id)
        return await self._started(spec)

    @user_errors
    async def Kill(self, request, context):
        request.container = await self._container_name(request.container)
        spec, status = await self.store.get_container(request.container)
        _not_engines(spec, "kill")
        if status is None or status.state != "running":
            raise FailedPrecondition(f"container {request.container!r} is not running")
        stub = await self._agent(spec.host)
        await _forward(stub.Kill(pb.KillRequest(container=spec.name, signal=request.signal), timeout=30))
        return pb.Empty()

    @user_errors
    async def ConnectNetwork(self, request, context):
        request.container = await self._container_name(request.container)
        request.network = await self._network_name(request.network)
        received = time.time()
        _not_engines((await self.store.get_container(request.container))[0], "connect")
        spec = await self.store.connect(request.container, request.network, tuple(request.aliases), request.ip,
                                        request_id=request.request_id)
        committed = time.time()
        detail = _detail(*await self._applied(spec))
        # As for run: wall-clock stamps, for tests/benchmarks/bench_lab_propagation.py.
        timing.emit(log, timing.CONNECT, container=request.container, network=request.network,
                    received=received, committed=committed, applied=time.time())
        return detail

    @user_errors
    async def DisconnectNetwork(self, request, context):
        request.container = await self._container_name(request.container)
        request.network = await self._network_name(request.network)
        _not_engines((await self.store.get_container(request.container))[0], "disconnect")
        spec = await self.store.disconnect(request.container, request.network, request_id=request.request_id)
        return _detail(*await self._applied(spec))

    async def _applied(self, spec: ContainerSpec) -> tuple[ContainerSpec, ContainerStatus | None]:
        """Wait (bounded) until the agent has reported on this version of the spec,
        so `network connect` returns with the interface in place."""
        def caught_up() -> bool:
            status = self.cache.index.statuses.get(spec.name)
            return status is not None and status.id == spec.id and status.networks == spec.networks
        await self.cache.wait_until(caught_up, START_TIMEOUT)
        return spec, self.cache.index.statuses.get(spec.name)

    @user_errors
    async def ListContainers(self, request, context):
        details = [_detail(spec, status) for spec, status in await self.store.list_containers()]
        if not request.all:
            details = [d for d in details if d.status.state == "running"]
        return pb.ContainerList(containers=details)

    @user_errors
    async def Inspect(self, request, context):
        request.name = await self._container_name(request.name)
        return _detail(*await self.store.get_container(request.name))

    @user_errors
    async def Stop(self, request, context):
        done = await self.store.request_done(request.request_id)
        if done is None:
            request.name = await self._container_name(request.name)
        else:
            request.name = done.name
        spec = await self.store.made_by(done, request.name) if done else (await self.store.get_container(request.name))[0]
        _not_engines(spec, "stop")
        timeout = request.timeout or spec.stop_timeout
        spec = await self.store.set_desired(request.name, "stopped", stop_timeout=timeout,
                                            request_id=request.request_id)
        status, done = await self._wait_status(spec, lambda s: s.state != "running", timeout + 10.0)
        if not done:
            raise OutcomeUnknown(
                f"the outcome is unknown: host {spec.host!r} has not confirmed that container "
                f"{spec.name!r} stopped within {timeout + 10.0:.0f}s; it may still stop. "
                f"Check with `vxmesh inspect {spec.name}`")
        return _detail(spec, status)

    @user_errors
    async def Remove(self, request, context):
        done = await self.store.request_done(request.request_id)
        if done is not None:
            if request.name not in (done.name, done.container_id) and not (
                    request.name and done.container_id.startswith(request.name)):
                raise FailedPrecondition(f"request id {done.id!r} was used for container {done.name!r}, "
                                         f"not {request.name!r}")
            return pb.Empty()   # removed by the first try of this request
        request.name = await self._container_name(request.name)
        spec, status = await self.store.get_container(request.name)
        _not_engines(spec, "rm")
        if status is not None and status.state == "running" and not request.force:
            raise FailedPrecondition(
                f"container {request.name!r} is running: stop it first or use rm -f")
        await self._remove(spec, request.request_id)
        return pb.Empty()

    async def _remove(self, spec: ContainerSpec, request_id: str = "") -> None:
        await self.store.delete_container(spec.name, request_id)
        # The agent kills and tears it down, then reports "removed" and the
        # controller releases its addresses; wait for that so `rm` means gone.
        released = await self.cache.wait_until(lambda: spec.name not in self.cache.index.statuses,
                                               REMOVE_TIMEOUT)
        if not released:
            log.warning("host %s has not confirmed removing %s yet", spec.host, spec.name)

    @user_errors_streaming
    async def Exec(self, request, context) -> AsyncIterator[pb.ExecOutput]:
        request.container = await self._container_name(request.container)
        request_limits.check_exec(request)
        spec, _ = await self.store.get_container(request.container)
        _not_engines(spec, "exec")
        stub = await self._agent(spec.host)
        async for chunk in _forward_stream(stub.Exec(request)):
            yield chunk

    async def ExecAttached(self, request_iterator, context) -> AsyncIterator[pb.ExecOutput]:
        """exec -i / -t: the user's stream, passed through to the container's host."""
        first = await anext(request_iterator, None)
        try:
            if first is None or not first.HasField("start"):
                raise InvalidArgument("an attached exec starts with its request")
            request_limits.check_exec(first.start)
            first.start.container = await self._container_name(first.start.container)
            spec, _ = await self.store.get_container(first.start.container)
            stub = await self._agent(spec.host)
        except UserError as err:
            await context.abort(err.code, bounded(str(err)))

        async def forwarded():
            yield first
            async for message in request_iterator:
                yield message

        try:
            async for chunk in _forward_stream(stub.ExecAttached(forwarded())):
                yield chunk
        except UserError as err:
            await context.abort(err.code, bounded(str(err)))

    @user_errors_streaming
    async def Logs(self, request, context) -> AsyncIterator[pb.LogChunk]:
        async for chunk in self.logs(await self._container_name(request.container), request.follow,
                                     request.tail, request.wait_start):
            yield chunk

    async def logs(self, container: str, follow: bool = False, tail: str = "",
                   wait_start: bool = False) -> AsyncIterator[pb.LogChunk]:
        """A container's output so far (with `follow`, until it stops; with `tail`,
        Docker's --tail, from its last lines), from its host's agent; a UserError
        when it cannot be had."""
        validate.log_tail(tail)   # refused here, before any host is asked
        spec, _ = await self.store.get_container(container)
        _not_engines(spec, "logs")
        stub = await self._agent(spec.host)
        async for chunk in _forward_stream(stub.Logs(pb.LogsRequest(container=container, follow=follow,
                                                                    tail=tail, wait_start=wait_start))):
            yield chunk

    # ---- helpers -----------------------------------------------------------

    async def _network_name(self, ref: str) -> str:
        """The network `ref` names: its name, or its id or a unique prefix of it."""
        if not ref or not all(c in "0123456789abcdef" for c in ref):
            return ref
        networks = await self.store.list_networks()
        if any(n.name == ref for n in networks):
            return ref
        matches = [n.name for n in networks if n.id.startswith(ref)]
        if len(matches) > 1:
            raise InvalidArgument(f"network id prefix {ref!r} is ambiguous: {len(matches)} networks match")
        return matches[0] if matches else ref

    async def _container_name(self, ref: str) -> str:
        """The container `ref` names: its name, or (as Docker takes them) its full
        id or a prefix of it that only one container's id has."""
        if not ref or not all(c in "0123456789abcdef" for c in ref):
            return ref
        specs = [spec for spec, _ in await self.store.list_containers()]
        if any(spec.name == ref for spec in specs):
            return ref
        matches = [spec.name for spec in specs if spec.id.startswith(ref)]
        if len(matches) > 1:
            raise InvalidArgument(f"container id prefix {ref!r} is ambiguous: {len(matches)} containers match")
        return matches[0] if matches else ref

    async def _wait_status(self, spec: ContainerSpec, done, timeout: float) -> tuple[ContainerStatus | None, bool]:
        """Wait until the agent reports this version of the spec as `done`: the
        status then, and whether it came. A report slow to come may have been
        lost (with a stream, or a controller): the agent is asked to resend."""
        def current() -> ContainerStatus | None:
            status = self.cache.index.statuses.get(spec.name)
            return status if status is not None and status.id == spec.id else None

        def finished() -> bool:
            status = current()
            return status is not None and status.generation >= spec.generation and done(status)

        first = min(RESYNC_AFTER, timeout)
        if not await self.cache.wait_until(finished, first):
            try:
                await self.store.ask_resync(spec.host)
            except UserError as err:  # etcd away: the wait goes on, the answer says what came
                log.warning("could not ask %s to resend its statuses: %s", spec.host, err)
            await self.cache.wait_until(finished, timeout - first)
        return current(), finished()

    async def _agent(self, host: str) -> pb_grpc.HostAgentStub:
        hosts = {h.name: h for h in await self.store.list_hosts()}
        if host not in hosts:
            raise NotFound(f"no such host: {host!r}")
        if hosts[host].state != "up" or not hosts[host].api:
            raise Unavailable(_not_up(host, hosts[host].state))
        # With TLS the agent must present the certificate of this host, not
        # merely one from the cluster's CA: a host record pointing its API at
        # another host's address gets no answer.
        key = (hosts[host].api, host)
        if key not in self._channels:
            self._channels[key] = self.agent_transport.channel(hosts[host].api, server_name=host)
        return pb_grpc.HostAgentStub(self._channels[key])

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def _not_engines(spec: ContainerSpec, verb: str) -> None:
    """An engine's endpoint is its engine's to manage: vxmesh only wires it."""
    if spec.engine:
        engine = "docker" if spec.engine == "docker" else "its CNI runtime (podman)"
        raise FailedPrecondition(f"cannot {verb} {spec.name!r}: it is an endpoint of {engine} container "
                                 f"{spec.engine_id[:12] or '(not joined)'}; use {engine} for that")


def _not_up(host: str, state: str) -> str:
    if state == "agent down":
        return (f"the agent of host {host!r} is down (its containers keep running and stay "
                "reachable); try again when it is back")
    return f"host {host!r} is down"


def _usable(hosts: dict, wanted: str) -> bool:
    """Whether `hosts` has the wanted host up, or (none wanted) any host up."""
    if wanted:
        return wanted in hosts and hosts[wanted].state == "up"
    return any(h.state == "up" for h in hosts.values())


def _least_loaded(hosts) -> str:
    live = [h for h in hosts if h.state == "up"]
    if not live:
        raise FailedPrecondition("no live host to run the container on")
    return min(live, key=lambda h: (h.containers, h.name)).name


def _detail(spec: ContainerSpec, status: ContainerStatus | None) -> pb.ContainerDetail:
    detail = pb.ContainerDetail(spec=spec.to_wire())
    if status is not None:
        detail.status.CopyFrom(status.to_wire())
    else:
        detail.status.CopyFrom(pb.ContainerStatus(name=spec.name, id=spec.id, state="created"))
    return detail


async def _forward(call):
    """Pass an agent's error through as the user's error, with its message."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        raise _user_error(err) from None


async def _forward_stream(call):
    try:
        async for item in call:
            yield item
    except grpc.aio.AioRpcError as err:
        raise _user_error(err) from None


def _user_error(err: grpc.aio.AioRpcError) -> UserError:
    error = UserError(err.details() or err.code().name)
    error.status = err.code().name
    return error
