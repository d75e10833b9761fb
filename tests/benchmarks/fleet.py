"""The benchmark driver's handle on a process of simulated agents (sim_agents.py)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.benchmarks.proc_stats import cpu_seconds, rss_kib

REPLY_SECONDS = 600.0


class FleetError(Exception):
    pass


class Fleet:
    """``async with Fleet(controller_address, log_path) as fleet: await fleet.start([...])``"""

    def __init__(self, controller: str, log_path: Path, number_base: int = 0):
        self.controller = controller
        self.log_path = log_path
        self.number_base = number_base
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Fleet:
        log = open(self.log_path, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.benchmarks.sim_agents", "--controller", self.controller,
                "--number-base", str(self.number_base),
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

    async def call(self, cmd: str, reply_seconds: float = REPLY_SECONDS, **args) -> dict:
        """One command (its `args` go to the process, a `timeout` among them) and its reply."""
        self.process.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.process.stdin.drain()
        return await asyncio.wait_for(self._reply(cmd), reply_seconds)

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


# Host numbers (and so VTEPs) of one process of a Fleets never reach the next one's.
NUMBERS_PER_PROCESS = 20_000


class Fleets:
    """Simulated agents shared out over several processes, for when one
    process's event loop would be the bottleneck (a thousand streams, each with
    its heartbeats). Each agent name lives in one process, chosen by the order
    names are first started in; the calls take and answer for any names."""

    def __init__(self, controller: str, work: Path, processes: int):
        if processes < 1:
            raise ValueError("at least one process of simulated agents")
        self.members = [Fleet(controller, work / f"agents{i}.log", number_base=i * NUMBERS_PER_PROCESS)
                        for i in range(processes)]
        self._home: dict[str, Fleet] = {}

    async def __aenter__(self) -> Fleets:
        try:
            for member in self.members:
                await member.__aenter__()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await asyncio.gather(*(member.close() for member in self.members), return_exceptions=True)

    @property
    def pids(self) -> list[int]:
        return [member.pid for member in self.members]

    def cpu_seconds(self) -> float:
        """CPU time all the processes have used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_kib(self) -> int:
        return sum(member.rss_kib() for member in self.members)

    def _split(self, names: list[str]) -> dict[Fleet, list[str]]:
        out: dict[Fleet, list[str]] = {}
        for name in names:
            if name not in self._home:
                self._home[name] = self.members[len(self._home) % len(self.members)]
            out.setdefault(self._home[name], []).append(name)
        return out

    async def _each(self, names: list[str], cmd: str, **args) -> list[dict]:
        parts = self._split(names)
        # A command's own timeout ends it with a reply: wait for that reply a little longer.
        reply_seconds = args.get("timeout", REPLY_SECONDS - 30) + 30
        return list(await asyncio.gather(*(member.call(cmd, reply_seconds, names=mine, **args)
                                           for member, mine in parts.items())))

    async def start(self, names: list[str], kind: str = "light", track: str = "-", timeout: float = 120) -> dict:
        """Start the agents, all processes at once; when the first began and the last was connected."""
        replies = await self._each(names, "start", kind=kind, track=track, timeout=timeout)
        return {"t_start": min(r["t_start"] for r in replies), "t_connected": max(r["t_connected"] for r in replies)}

    async def restart(self, names: list[str], timeout: float = 120) -> dict:
        """A reconnect storm (sim_agents.py's restart), in every process at once."""
        replies = await self._each(names, "restart", timeout=timeout)
        if not all(r.get("ok") for r in replies):
            raise FleetError(f"the reconnect storm: {replies}")
        return {"t_start": min(r["t_start"] for r in replies), "t_connected": max(r["t_connected"] for r in replies)}

    async def wait_endpoints(self, names: list[str], network: str, count: int, timeout: float = 120) -> None:
        """Until each named agent holds `count` endpoints of `network`."""
        replies = await self._each(names, "wait_endpoints", network=network, count=count, timeout=timeout)
        short = [r for r in replies if not r["ok"]]
        if short:
            raise FleetError(f"{sum(r['missing'] for r in short)} simulated agents did not get {count} endpoints "
                             f"of {network!r} within {timeout:.0f} s (some counts: {short[0]['short']})")

    async def wait_rows(self, names: list[str], count: int, timeout: float = 300) -> None:
        """Until each named agent holds `count` table rows over all its networks."""
        replies = await self._each(names, "wait_rows", count=count, timeout=timeout)
        short = [r for r in replies if not r["ok"]]
        if short:
            raise FleetError(f"{sum(r['missing'] for r in short)} simulated agents did not get their {count} "
                             f"table rows within {timeout:.0f} s (some counts: {short[0]['short']})")

    async def seen(self, names: list[str]) -> dict[str, list[float]]:
        """Per tracked key: how many of the named agents saw it, and when the last of them did."""
        merged: dict[str, list[float]] = {}
        for reply in await self._each(names, "seen"):
            for key, (count, last) in reply["seen"].items():
                entry = merged.setdefault(key, [0, 0.0])
                entry[0] += count
                entry[1] = max(entry[1], last)
        return merged
