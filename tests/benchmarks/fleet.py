"""The benchmark driver's handle on a process of simulated agents (sim_agents.py)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.benchmarks.proc_stats import rss_kib

REPLY_SECONDS = 600.0


class FleetError(Exception):
    pass


class Fleet:
    """``async with Fleet(controller_address, log_path) as fleet: await fleet.start([...])``"""

    def __init__(self, controller: str, log_path: Path):
        self.controller = controller
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Fleet:
        log = open(self.log_path, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.benchmarks.sim_agents", "--controller", self.controller,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                limit=256 * 1024 * 1024, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        finally:
            log.close()
        try:
            await self._reply("the fleet's start")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.process.pid)

    async def call(self, cmd: str, timeout: float = REPLY_SECONDS, **args) -> dict:
        self.process.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.process.stdin.drain()
        return await asyncio.wait_for(self._reply(cmd), timeout)

    async def start(self, names: list[str], kind: str = "light", track: str = "-", timeout: float = 120) -> dict:
        return await self.call("start", names=names, kind=kind, track=track, timeout=timeout)

    async def wait_endpoints(self, names: list[str], network: str, count: int, timeout: float = 120) -> dict:
        reply = await self.call("wait_endpoints", names=names, network=network, count=count, timeout=timeout)
        if not reply["ok"]:
            raise FleetError(f"{reply['missing']} simulated agents did not get {count} endpoints of "
                             f"{network!r} within {timeout:.0f} s (some counts: {reply['short']})")
        return reply["reached"]

    async def _reply(self, what: str) -> dict:
        line = await self.process.stdout.readline()
        if not line:
            code = await self.process.wait()
            raise FleetError(f"the simulated agents' process exited ({code}) during {what}: "
                             f"{self._log_tail()}")
        reply = json.loads(line)
        if not reply.get("ok") and "error" in reply:
            raise FleetError(f"simulated agents failed {what}: {reply['error']}")
        return reply

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    async def close(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        try:
            self.process.stdin.write(b'{"cmd": "exit"}\n')
            await self.process.stdin.drain()
            await asyncio.wait_for(self.process.wait(), 10)
        except (asyncio.TimeoutError, ConnectionError, BrokenPipeError):
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
