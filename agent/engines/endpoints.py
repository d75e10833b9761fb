"""Engines' endpoints on this host: asked of the controller, wired by the reconcile loop.

An endpoint is an address on a vxmesh network for one of an engine's
containers (controller/store/engines.py keeps it as a ContainerSpec with
`engine` set). Joining it names the engine's namespace here
(names.container_netns, a bind mount of the path the engine gave, seen
through the calling process's root) before the controller records the
join, so the loop never sees a join without its namespace; each call
returns once a reconcile pass has done what it asked, so the engine starts
its container with the interface in place and a removal is complete when
the engine hears of it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable

import grpc

from agent import names
from agent.engines.docker_api import DockerNames
from agent.kernel.netns import (adopt_netns, interface_with_mac, link_names, netns_exists, netns_path,
                               remove_netns)
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.records import ContainerSpec, PortMapping

log = logging.getLogger(__name__)

# How long a call waits for the controller, then for the loop to wire it.
CALL_SECONDS = 20.0
SETTLE_SECONDS = 30.0
# How long Docker may take from its join to the sandbox holding the interface
# (it makes the namespace as it starts the container), and how often to look.
ADOPT_SECONDS = 60.0
ADOPT_POLL_SECONDS = 0.05
CONTAINER_SECONDS = 10.0
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


def container_in_netns(netns: str) -> str:
    """A 64-hex container id from the cgroup of a process in namespace `netns`, or ""."""
    try:
        wanted = os.stat(netns_path(netns)).st_ino
    except OSError:
        return ""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino != wanted:
                continue
            with open(f"/proc/{entry}/cgroup") as f:
                ids = _CONTAINER_ID.findall(f.read())
        except OSError:
            continue
        if ids:
            return ids[-1]
    return ""


class EngineError(Exception):
    """A refusal or failure the engine is told about in one line (no traceback in the log)."""
    expected = True


class EnginesClient:
    """The controllers' Engines service, moving on to the next controller when one is down."""

    def __init__(self, addresses: list[str], dial: Callable[[str], grpc.aio.Channel]):
        self.addresses = list(addresses)
        self.dial = dial
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._current = 0

    async def call(self, method: str, request):
        last = "no controller configured"
        for step in range(len(self.addresses)):
            index = (self._current + step) % len(self.addresses)
            address = self.addresses[index]
            if address not in self._channels:
                self._channels[address] = self.dial(address)
            stub = pb_grpc.EnginesStub(self._channels[address])
            try:
                reply = await getattr(stub, method)(request, timeout=CALL_SECONDS)
            except grpc.aio.AioRpcError as err:
                if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    last = f"controller {address}: {err.details()}"
                    continue
                raise EngineError(err.details()) from None
            self._current = index
            return reply
        raise EngineError(f"no controller answers ({last})")

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


class EngineEndpoints:
    def __init__(self, host: str, client: EnginesClient, settle: Callable[[], Awaitable[None]],
                 wired: Callable[[str], str | None], known: Callable[[str], bool], adopting: set[str],
                 docker_names: Callable[[str, str], Awaitable[DockerNames]] | None = None):
        self.host = host
        # Docker's name and aliases for (a container id, its endpoint's id)
        # (agent/engines/docker_api.py), or None: not asked.
        self._docker_names = docker_names
        self.client = client
        self._settle = settle    # wakes the reconcile loop and waits for a pass
        self._wired = wired      # the sandbox an endpoint is wired into now, or None
        self._known = known      # whether the agent's view has the endpoint
        self._adopting = adopting  # names being joined here now (the loop leaves their namespace be)
        self._adopt_tasks: dict[str, asyncio.Task] = {}

    def wired(self, name: str) -> str | None:
        """The sandbox endpoint `name` is wired into now, or None."""
        return self._wired(name)

    async def attach(self, engine: str, network: str, ip: str = "", mac: str = "", engine_id: str = "",
                     ports: tuple[PortMapping, ...] = (), aliases: tuple[str, ...] = ()) -> ContainerSpec:
        reply = await self.client.call("Attach", pb.EngineAttachRequest(
            host=self.host, engine=engine, network=network, ip=ip, mac=mac, engine_id=engine_id,
            ports=[p.to_wire() for p in ports], aliases=list(aliases)))
        return ContainerSpec.from_wire(reply)

    async def name(self, spec: ContainerSpec, engine_endpoint: str,
                   ports: tuple[PortMapping, ...] = ()) -> ContainerSpec:
        """Record the engine's name for the endpoint (Docker's endpoint id), and the
        ports it publishes, before it joins."""
        reply = await self.client.call("Join", pb.EngineJoinRequest(
            name=spec.name, engine_endpoint=engine_endpoint, ports=[p.to_wire() for p in ports]))
        return ContainerSpec.from_wire(reply)

    async def join(self, spec: ContainerSpec, source: str, sandbox: str, interface: str,
                   engine_id: str = "", interface_prefix: str = "") -> ContainerSpec:
        """Wire `spec` into the namespace at `source` (the engine's `sandbox`, as this
        process reaches it), as `interface`, or (none given) as the first
        `interface_prefix`<N> free there."""
        netns = names.container_netns(self.host, spec.id)
        await self._until_known(spec)
        self._adopting.add(spec.name)
        try:
            await adopt_netns(netns, source)
        except (OSError, ValueError) as err:
            self._adopting.discard(spec.name)
            raise EngineError(f"cannot open the network namespace {sandbox}: {err}") from None
        try:
            taken = await link_names(netns)
            if not interface:
                interface = next(f"{interface_prefix}{n}" for n in range(len(taken) + 1)
                                 if f"{interface_prefix}{n}" not in taken)
            elif interface in taken and self._wired(spec.name) != sandbox:
                raise EngineError(f"the network namespace {sandbox} already has an interface {interface}")
            reply = await self.client.call("Join", pb.EngineJoinRequest(
                name=spec.name, engine_id=engine_id, sandbox=sandbox, interface=interface))
            await self._until(lambda: self._wired(spec.name) == sandbox,
                              f"endpoint {spec.name} was not wired into {sandbox}")
        except BaseException:
            if self._wired(spec.name) is None:
                await remove_netns(netns)
            raise
        finally:
            self._adopting.discard(spec.name)
        return ContainerSpec.from_wire(reply)

    async def hand_over(self, spec: ContainerSpec, sandbox: str, source: str) -> str:
        """Docker's join: its sandbox `sandbox` (at `source` from here) does not exist
        yet, so the container end is made in this host's namespace for Docker to
        move in; its name is returned. Once Docker has made the sandbox, it is
        named here and the interface known by the name Docker gave it."""
        await self.client.call("Join", pb.EngineJoinRequest(name=spec.name, sandbox=sandbox))
        await self._until(lambda: self._wired(spec.name) == sandbox,
                          f"endpoint {spec.name} was not made for {sandbox}")
        task = asyncio.create_task(self._adopt(spec, sandbox, source), name=f"adopt-{spec.name}")
        self._adopt_tasks[spec.name] = task
        task.add_done_callback(lambda _: self._adopt_tasks.pop(spec.name, None))
        return names.engine_handover(spec.id)

    async def _adopt(self, spec: ContainerSpec, sandbox: str, source: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ADOPT_SECONDS
        netns = names.container_netns(self.host, spec.id)
        mac, address = spec.attachments[0].mac, spec.attachments[0].ip
        try:
            while True:
                try:
                    await adopt_netns(netns, source)
                    interface = await interface_with_mac(netns, mac, address)
                    if interface:
                        break
                except (OSError, ValueError):
                    pass   # not made yet
                if loop.time() > deadline:
                    log.warning("endpoint %s: %s never held its interface", spec.name, sandbox)
                    await remove_netns(netns)
                    return
                await asyncio.sleep(ADOPT_POLL_SECONDS)
            container = await self._container_of(netns, loop.time() + CONTAINER_SECONDS)
            known = await self._names_of(spec, container)
            await self.client.call("Join", pb.EngineJoinRequest(name=spec.name, sandbox=sandbox,
                                                                interface=interface, engine_id=container,
                                                                engine_name=known.name,
                                                                engine_aliases=list(known.aliases)))
            log.info("endpoint %s: %s in %s (container %s, %s)", spec.name, interface, sandbox, container[:12],
                     " ".join((known.name, *known.aliases)) or "no name")
        except EngineError as err:
            log.warning("endpoint %s: cannot record its interface: %s", spec.name, err)

    async def _names_of(self, spec: ContainerSpec, container: str) -> DockerNames:
        """Docker's name and aliases for `container`, for the embedded DNS; none when
        it cannot say (the endpoint works the same, only without those names)."""
        if self._docker_names is None or not container:
            return DockerNames()
        try:
            known = await self._docker_names(container, spec.engine_endpoint)
        except Exception as err:   # DockerApiError, or anything the socket threw: a name is optional
            log.warning("endpoint %s: Docker's name for container %s unknown: %s", spec.name, container[:12], err)
            return DockerNames()
        if known.aliases_unknown:
            log.warning("endpoint %s: Docker's aliases for container %s unknown: %s", spec.name, container[:12],
                        known.aliases_unknown)
        if known.refused:
            log.warning("endpoint %s: Docker's aliases %s are no host names; the DNS does not answer them",
                        spec.name, ", ".join(map(repr, known.refused)))
        return known

    async def _container_of(self, netns: str, deadline: float) -> str:
        """The id of the container whose processes use namespace `netns` (the engine
        starts it right after making the namespace), from their cgroup; "" if
        none shows up in time."""
        loop = asyncio.get_running_loop()
        while True:
            found = await asyncio.to_thread(container_in_netns, netns)
            if found or loop.time() > deadline:
                return found
            await asyncio.sleep(ADOPT_POLL_SECONDS)

    async def leave(self, spec: ContainerSpec) -> None:
        """The interface goes, the address stays (Docker's Leave before DeleteEndpoint)."""
        adopting = self._adopt_tasks.pop(spec.name, None)
        if adopting is not None:
            adopting.cancel()
        await self.client.call("Join", pb.EngineJoinRequest(name=spec.name, sandbox=""))
        netns = names.container_netns(self.host, spec.id)
        await self._until(lambda: self._wired(spec.name) is None and not netns_exists(netns),
                          f"endpoint {spec.name} did not leave its namespace")

    async def detach(self, spec: ContainerSpec) -> None:
        """Remove the endpoint; returns when this host has torn it down."""
        await self._remove("Detach", spec)

    async def reclaim(self, spec: ContainerSpec) -> None:
        """Remove an endpoint its engine forgot, its address free at once (the
        controller's Reclaim); returns when this host has torn it down."""
        await self._remove("Reclaim", spec)

    async def _remove(self, method: str, spec: ContainerSpec) -> None:
        try:
            await self.client.call(method, pb.NameRequest(name=spec.name))
        except EngineError as err:
            if "not found" not in str(err):
                raise
        netns = names.container_netns(self.host, spec.id)
        await self._until(lambda: self._wired(spec.name) is None and not netns_exists(netns),
                          f"endpoint {spec.name} was not torn down")

    async def list(self) -> list[ContainerSpec]:
        reply = await self.client.call("List", pb.EngineListRequest(host=self.host))
        return [ContainerSpec.from_wire(s) for s in reply.specs]

    async def find_network(self, name: str = "", subnet: str = "") -> pb.Network:
        return await self.client.call("FindNetwork", pb.EngineNetworkRequest(name=name, subnet=subnet))

    async def _until_known(self, spec: ContainerSpec) -> None:
        """Until a pass has run knowing the endpoint: before that, a pass takes a
        namespace named after it for a leftover and removes it."""
        await self._until(lambda: self._known(spec.name), f"endpoint {spec.name} did not reach this host")
        await self._settle()

    async def _until(self, done: Callable[[], bool], failure: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise EngineError(f"{failure} within {SETTLE_SECONDS:.0f}s")
            try:
                await asyncio.wait_for(self._settle(), remaining)
            except asyncio.TimeoutError:
                pass
