"""Simulated agents: many hosts in one process, speaking the real AgentLink protocol.

    python -m tests.benchmarks.sim_agents --controller unix:///path/controller.sock

Each simulated agent is the agent's own stream code (agent/link.py's
ControllerLink: hello, heartbeats, status reports, resume) feeding a view,
with no kernel and no processes behind it: when a container with desired
state "running" is placed on its host it reports it running at once, so the
user API's `run` returns as with a real agent. It notes when it first saw
each endpoint (time.monotonic, which is one clock for every process on the
machine, so the benchmark driver can compare it with its own timestamps).

Two kinds of view: "full" is the real agent's View (every record decoded and
kept, as an agent does); "light" decodes only what the protocol needs (its
own containers, networks) and keeps endpoint keys, so a hundred agents
holding 10,000 entries each fit in one process.

The driver talks to this process with one JSON object per line on stdin and
gets one JSON line back on stdout for each (see `Fleet` in fleet.py).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import time

from agent.link import ControllerLink
from agent.view import View
from proto import vxmesh_pb2 as pb
from proto.records import ContainerSpec, ContainerStatus, Host, Network
from tests.benchmarks.proc_stats import rss_kib

log = logging.getLogger("sim_agents")


class _Recorder:
    """What every simulated view does on top of applying: timestamps and replies."""

    def _init_recorder(self, track: str) -> None:
        # Endpoint keys holding this text have their arrival timed: a network's
        # prefix ("/vxmesh/endpoints/hot/"), or a container name's mark ("/upd-")
        # when the timed endpoints are spread over many networks.
        self.track = track
        self.first_seen: dict[str, float] = {}
        self.to_report: list[ContainerSpec] = []
        self.updates = 0

    def _note(self, update: pb.ViewUpdate, now: float) -> None:
        self.updates += 1
        for change in update.changes:
            kind = change.WhichOneof("record")
            if kind == "endpoint" and not change.deleted and self.track in change.key:
                self.first_seen.setdefault(change.key, now)
            elif kind == "container" and not change.deleted:
                c = change.container
                if c.host == self.host and c.desired == "running":
                    self.to_report.append(ContainerSpec.from_wire(c))


class FullView(View, _Recorder):
    """The real agent's view, every record decoded and kept."""

    def __init__(self, host: str, track: str):
        View.__init__(self, host)
        self._init_recorder(track)
        self._counted: dict[str, tuple[int, int]] = {}

    def apply(self, update: pb.ViewUpdate) -> None:
        self._note(update, time.monotonic())
        super().apply(update)

    def endpoint_count(self, network: str) -> int:
        # Counting walks every record: do it once per update, not once per poll.
        if self._counted.get(network, (-1, 0))[0] != self.updates:
            self._counted[network] = (self.updates, len(self.endpoints(network)))
        return self._counted[network][1]


class LightView(_Recorder):
    """As much of View as ControllerLink uses, keeping endpoints as keys only."""

    def __init__(self, host: str, track: str):
        self.host = host
        self.revision = 0
        self._containers: dict[str, ContainerSpec] = {}
        self._networks: dict[str, Network] = {}
        self._endpoints: dict[str, set[str]] = {}   # network -> endpoint keys
        self._resync_asked = 0.0
        self._init_recorder(track)

    def apply(self, update: pb.ViewUpdate) -> None:
        # One pass, by the key's directory: with a thousand hosts a snapshot
        # holds two thousand host and liveness rows this view does not keep,
        # and a storm is a thousand snapshots on the harness's share of the CPU.
        now = time.monotonic()
        self.updates += 1
        if update.snapshot:
            self._containers, self._networks, self._endpoints = {}, {}, {}
        for change in update.changes:
            key = change.key
            directory = key.split("/", 3)[2]
            if directory == "endpoints":
                network = key.rsplit("/", 2)[-2]
                keys = self._endpoints.setdefault(network, set())
                if change.deleted or not change.HasField("endpoint"):
                    keys.discard(key)
                else:
                    keys.add(key)
                    if self.track in key:
                        self.first_seen.setdefault(key, now)
            elif directory == "containers":
                if change.deleted or not change.HasField("container"):
                    self._containers.pop(key, None)
                else:
                    spec = ContainerSpec.from_wire(change.container)
                    self._containers[key] = spec
                    if spec.host == self.host and spec.desired == "running":
                        self.to_report.append(spec)
            elif directory == "networks":
                if change.deleted or not change.HasField("network"):
                    self._networks.pop(key, None)
                else:
                    self._networks[key] = Network.from_wire(change.network)
            elif directory == "resync" and not change.deleted and change.HasField("resync") \
                    and change.resync.host == self.host:
                self._resync_asked = max(self._resync_asked, change.resync.asked_at)
        self.revision = update.revision

    def resync_asked(self) -> float:
        """When a controller last asked this host to report every status again (0: never)."""
        return self._resync_asked

    def networks(self) -> dict[str, Network]:
        wanted = {net for spec in self._containers.values() if spec.host == self.host for net in spec.networks}
        return {n.name: n for n in self._networks.values() if n.name in wanted}

    def endpoint_count(self, network: str) -> int:
        return len(self._endpoints.get(network, ()))

    def row_count(self) -> int:
        """Endpoints held, over every network."""
        return sum(len(keys) for keys in self._endpoints.values())


class SimAgent:
    def __init__(self, controller: str, name: str, number: int, kind: str, track: str,
                 started: dict[tuple[str, int], float]):
        self.name = name
        # When each container "started", kept by the fleet across an agent's
        # restarts: a real agent coming back reports what its runtime says, the
        # same start time, so the controller finds nothing new to store.
        self.started = started
        view_type = FullView if kind == "full" else LightView
        self.view = view_type(name, track)
        host = Host(name=name, vtep=f"10.{200 + number // 62500}.{number // 250 % 250}.{1 + number % 250}",
                    api="127.0.0.1:9", mtu=1500)
        self.link = ControllerLink([controller], host, self.view, self._on_update, lambda: [])
        self._reported: set[tuple[str, int]] = set()
        self.task = asyncio.create_task(self.link.run(), name=f"sim-agent-{name}")

    def _on_update(self) -> None:
        specs, self.view.to_report = self.view.to_report, []
        for spec in specs:
            if (spec.id, spec.generation) in self._reported:
                continue
            self._reported.add((spec.id, spec.generation))
            self.link.report(ContainerStatus(
                name=spec.name, id=spec.id, state="running", pid=1,
                started_at=self.started.setdefault((spec.id, spec.generation), time.time()),
                generation=spec.generation, host=self.name, networks=spec.networks))

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class Fleet:
    def __init__(self, controller: str, number_base: int = 0):
        self.controller = controller
        # Several fleet processes serve one benchmark: each numbers its hosts
        # (and so their VTEPs) from its own base, so no two hosts share a VTEP.
        self.number_base = number_base
        self.agents: dict[str, SimAgent] = {}
        self._numbers: dict[str, int] = {}
        self._started: dict[tuple[str, int], float] = {}

    async def handle(self, cmd: dict) -> dict:
        op = cmd["cmd"]
        if op == "start":
            return await self._start(cmd["names"], cmd.get("kind", "light"), cmd.get("track", "-"),
                                     cmd.get("timeout", 60))
        if op == "restart":
            return await self._restart(cmd["names"], cmd.get("timeout", 60))
        if op == "stop_agents":
            for name in cmd["names"]:
                await self.agents.pop(name).stop()
            return {"ok": True}
        if op == "wait_endpoints":
            return await self._wait_endpoints(cmd["names"], cmd["network"], cmd["count"], cmd.get("timeout", 60))
        if op == "wait_rows":
            return await self._wait_rows(cmd["names"], cmd["count"], cmd.get("timeout", 60))
        if op == "seen":
            return self._seen(cmd["names"])
        if op == "endpoints":
            view = self.agents[cmd["name"]].view
            return {"endpoints": [e.to_dict() for e in view.endpoints(cmd["network"])]}
        if op == "rss":
            return {"rss_kib": rss_kib(os.getpid()), "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        raise ValueError(f"unknown command {op!r}")

    async def _start(self, names: list[str], kind: str, track: str, timeout: float) -> dict:
        started = time.monotonic()
        new = []
        for name in names:
            if name in self.agents:
                raise ValueError(f"agent {name!r} is already running")
            # A name keeps its number, so an agent restarted under it keeps its VTEP (as a real host does).
            number = self._numbers.setdefault(name, self.number_base + len(self._numbers))
            self.agents[name] = SimAgent(self.controller, name, number, kind, track, self._started)
            new.append(self.agents[name])
        await asyncio.wait_for(asyncio.gather(*(a.link.connected.wait() for a in new)), timeout)
        return {"ok": True, "t_start": started, "t_connected": time.monotonic()}

    async def _restart(self, names: list[str], timeout: float) -> dict:
        """A reconnect storm: every named agent drops its stream and comes back at
        once as a fresh agent (empty view, so it asks for a whole snapshot)."""
        old = [self.agents.pop(name) for name in names]
        await asyncio.gather(*(agent.stop() for agent in old))
        kind = "full" if old and isinstance(old[0].view, FullView) else "light"
        track = old[0].view.track if old else "-"
        return await self._start(names, kind, track, timeout)

    async def _wait_endpoints(self, names: list[str], network: str, count: int, timeout: float) -> dict:
        """Until each named agent holds `count` endpoints of `network`; when each got there."""
        deadline = time.monotonic() + timeout
        reached: dict[str, float] = {}
        while True:
            for name in names:
                if name not in reached and self.agents[name].view.endpoint_count(network) >= count:
                    reached[name] = time.monotonic()
            if len(reached) == len(names):
                return {"ok": True, "reached": reached}
            if time.monotonic() > deadline:
                short = {n: self.agents[n].view.endpoint_count(network) for n in names if n not in reached}
                return {"ok": False, "short": dict(list(short.items())[:10]), "missing": len(short)}
            await asyncio.sleep(0.002)

    async def _wait_rows(self, names: list[str], count: int, timeout: float) -> dict:
        """Until each named agent holds `count` endpoints over all its networks."""
        deadline = time.monotonic() + timeout
        while True:
            short = {n: self.agents[n].view.row_count() for n in names}
            short = {n: c for n, c in short.items() if c < count}
            if not short:
                return {"ok": True}
            if time.monotonic() > deadline:
                return {"ok": False, "short": dict(list(short.items())[:10]), "missing": len(short)}
            await asyncio.sleep(0.05)

    def _seen(self, names: list[str]) -> dict:
        """Per tracked key: how many of the named agents saw it, and when the last did."""
        out: dict[str, list[float]] = {}
        for name in names:
            for key, at in self.agents[name].view.first_seen.items():
                entry = out.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] = max(entry[1], at)
        return {"seen": out}


async def _serve(controller: str, number_base: int) -> None:
    fleet = Fleet(controller, number_base)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ok": True, "ready": True}), flush=True)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "exit":
            break
        try:
            reply = await fleet.handle(cmd)
        except Exception as err:  # reported to the driver, which fails the benchmark with it
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        # Written blocking on purpose: the reply is the only thing the driver waits for.
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for agent in fleet.agents.values():
        await agent.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="simulated vxmesh agents for the benchmarks")
    parser.add_argument("--controller", required=True, help="controller address, e.g. unix:///path.sock")
    parser.add_argument("--number-base", type=int, default=0,
                        help="the first host number of this process (VTEPs follow it)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s sim_agents %(levelname)s %(message)s")
    asyncio.run(_serve(args.controller, args.number_base))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
