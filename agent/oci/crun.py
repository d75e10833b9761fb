"""crun's command line, for one host: its own state directory (`--root`), cgroupfs paths.

`create` is not here: conmon runs it (monitor.py), so the container is a
child of its monitor rather than of the agent.
"""
from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path

from agent.oci.model import ContainerError
from proto import tools
from proto.tools import ToolError

TIMEOUT = 30.0
CREATED = "created"
RUNNING = "running"
STOPPED = "stopped"
PAUSED = "paused"


@dataclass(frozen=True)
class CrunState:
    id: str
    status: str       # created | running | stopped | paused
    pid: int          # 0 once stopped


class Crun:
    def __init__(self, root: Path, binary: str | None = None):
        self.root = Path(root)   # crun's --root: this host's containers only
        try:
            self.binary = binary or tools.binary("crun")
        except ToolError as e:
            raise ContainerError(str(e)) from None

    def argv(self, *args: str) -> list[str]:
        return [self.binary, f"--root={self.root}", "--cgroup-manager=cgroupfs", *args]

    def knows(self, container_id: str) -> bool:
        """Whether crun holds state for the id (it keeps one directory per container under --root)."""
        return (self.root / container_id).is_dir()

    def ids(self) -> set[str]:
        try:
            return {entry.name for entry in self.root.iterdir() if entry.is_dir()}
        except FileNotFoundError:
            return set()

    async def state(self, container_id: str) -> CrunState | None:
        if not self.knows(container_id):
            return None
        result = await self._run("state", container_id, check=False)
        if result.returncode != 0:
            if not self.knows(container_id):
                return None  # deleted meanwhile
            raise ContainerError(f"crun state {container_id[:12]}: {tools.reason(result.stderr)}")
        data = json.loads(result.stdout)
        return CrunState(data["id"], data["status"], int(data.get("pid") or 0))

    async def start(self, container_id: str) -> None:
        await self._run("start", container_id)

    async def kill(self, container_id: str, sig: signal.Signals) -> None:
        await self._run("kill", container_id, str(int(sig)))

    async def delete(self, container_id: str) -> None:
        """Forget the container and remove its cgroup (-f: kill it first if it still runs)."""
        if self.knows(container_id):
            await self._run("delete", "--force", container_id)

    async def _run(self, *args: str, check: bool = True) -> tools.Output:
        try:
            return await tools.run(self.argv(*args), timeout=TIMEOUT, check=check)
        except ToolError as e:
            raise ContainerError(f"crun {args[0]} {args[-1][:12]}: {e}") from None
