"""Health checks of this host's containers: a command run in the container, again and again.

A container gets a probe while it runs when its spec has a health command,
run by `sh -c`: the one given with `--health-cmd`, or the image's
HEALTHCHECK, which the controller copies into the spec when it creates the
container unless --no-healthcheck says otherwise (Docker's rule: the
image's check is the default; controller/run_options.py). The agent's own
image store cannot say: the OCI configuration it unpacks has no such field.

Every interval the command runs in the container (as `exec` runs a command:
the container's user, namespaces and confinement), a failure being a
non-zero exit, no start, or no exit within the timeout. The state is
"starting" until the first success, "healthy" after any success, and
"unhealthy" after `retries` failures in a row, failures within the image's
start period not counted, as Docker's. A change of state asks the loop for
a pass, whose report carries it to the controller (the leader then takes
an unhealthy task out of its balancers and replaces it).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.oci.model import ContainerError
from agent.oci.runtime import Runtime
from proto.records import ContainerSpec

log = logging.getLogger(__name__)

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


@dataclass(frozen=True)
class Check:
    """One container's health check: the argv run in it, and its timing."""
    argv: tuple[str, ...]
    interval: float
    timeout: float
    retries: int
    start_period: float = 0.0


def check_for(spec: ContainerSpec) -> Check | None:
    """The container's check: its health command (given with --health-cmd, or its
    image's HEALTHCHECK, which the controller copied into the spec), or None."""
    if not spec.health_cmd:
        return None
    return Check(("sh", "-c", spec.health_cmd), spec.health_interval, spec.health_timeout,
                 spec.health_retries, spec.health_start_period)


class HealthChecks:
    def __init__(self, runtime: Runtime, wake: Callable[[], None]):
        self.runtime = runtime
        self._wake = wake
        self._probes: dict[str, asyncio.Task] = {}     # container id -> its probe
        self._states: dict[str, str] = {}

    def state(self, container_id: str) -> str:
        return self._states.get(container_id, "")

    def follow(self, spec: ContainerSpec, running: bool) -> None:
        """Probe the container while it runs and has a check; stop otherwise."""
        check = check_for(spec)
        if running and check is not None:
            if spec.id not in self._probes or self._probes[spec.id].done():
                self._states[spec.id] = STARTING
                self._probes[spec.id] = asyncio.create_task(self._probe(spec, check), name=f"health-{spec.name}")
        else:
            self.drop(spec.id)

    def drop(self, container_id: str) -> None:
        probe = self._probes.pop(container_id, None)
        if probe is not None:
            probe.cancel()
        self._states.pop(container_id, None)

    async def _probe(self, spec: ContainerSpec, check: Check) -> None:
        failures = 0
        grace_ends = time.monotonic() + check.start_period
        while True:
            await asyncio.sleep(check.interval)
            ok = await self._check(spec, check)
            if not ok and time.monotonic() < grace_ends and self.state(spec.id) == STARTING:
                continue          # still in its start period: a failure does not count yet
            failures = 0 if ok else failures + 1
            state = HEALTHY if ok else (UNHEALTHY if failures >= check.retries else self.state(spec.id))
            if state != self._states.get(spec.id):
                log.info("container %s is %s", spec.name, state)
                self._states[spec.id] = state
                self._wake()

    async def _check(self, spec: ContainerSpec, check: Check) -> bool:
        async def run() -> int:
            code = 1
            async for kind, data in self.runtime.exec(spec.id, list(check.argv)):
                if kind == "exit":
                    code = int(data)
            return code
        try:
            return await asyncio.wait_for(run(), check.timeout) == 0
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
