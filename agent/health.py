"""Health checks of this host's containers: `sh -c CMD` run in the container, again and again.

A container whose spec has a health command gets a probe while it runs:
every `health_interval` seconds the command runs in it (as `exec` runs a
command: the container's user, namespaces and confinement), a failure
being a non-zero exit, no start, or no exit within `health_timeout`. The
state is "starting" until the first success, "healthy" after any success,
and "unhealthy" after `health_retries` failures in a row, as Docker's. A
change of state asks the loop for a pass, whose report carries it to the
controller (the leader then takes an unhealthy task out of its balancers
and replaces it).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from agent.oci.model import ContainerError
from agent.oci.runtime import Runtime
from proto.records import ContainerSpec

log = logging.getLogger(__name__)

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


class HealthChecks:
    def __init__(self, runtime: Runtime, wake: Callable[[], None]):
        self.runtime = runtime
        self._wake = wake
        self._probes: dict[str, asyncio.Task] = {}     # container id -> its probe
        self._states: dict[str, str] = {}

    def state(self, container_id: str) -> str:
        return self._states.get(container_id, "")

    def follow(self, spec: ContainerSpec, running: bool) -> None:
        """Probe the container while it runs and has a health command; stop otherwise."""
        if running and spec.health_cmd:
            if spec.id not in self._probes or self._probes[spec.id].done():
                self._states[spec.id] = STARTING
                self._probes[spec.id] = asyncio.create_task(self._probe(spec), name=f"health-{spec.name}")
        else:
            self.drop(spec.id)

    def drop(self, container_id: str) -> None:
        probe = self._probes.pop(container_id, None)
        if probe is not None:
            probe.cancel()
        self._states.pop(container_id, None)

    async def _probe(self, spec: ContainerSpec) -> None:
        failures = 0
        while True:
            await asyncio.sleep(spec.health_interval)
            ok = await self._check(spec)
            failures = 0 if ok else failures + 1
            state = HEALTHY if ok else (UNHEALTHY if failures >= spec.health_retries else self.state(spec.id))
            if state != self._states.get(spec.id):
                log.info("container %s is %s", spec.name, state)
                self._states[spec.id] = state
                self._wake()

    async def _check(self, spec: ContainerSpec) -> bool:
        async def run() -> int:
            code = 1
            async for kind, data in self.runtime.exec(spec.id, ["sh", "-c", spec.health_cmd]):
                if kind == "exit":
                    code = int(data)
            return code
        try:
            return await asyncio.wait_for(run(), spec.health_timeout) == 0
        except (asyncio.TimeoutError, ContainerError):
            return False
        except Exception:      # a probe must never take the agent down
            log.exception("health check of %s", spec.name)
            return False

    async def close(self) -> None:
        for probe in self._probes.values():
            probe.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._probes.values(), return_exceptions=True)
