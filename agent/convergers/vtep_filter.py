"""Who may send this host VXLAN: the live hosts' VTEPs (agent option vtep-filter)."""
from __future__ import annotations

from collections.abc import Iterable

from agent.kernel import vtep_filter


class VtepFilter:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._applied: frozenset[str] | None = None  # None: not known to be applied

    async def converge(self, live_vteps: Iterable[str]) -> None:
        """VXLAN accepted from `live_vteps` only; no table when switched off."""
        wanted = frozenset(live_vteps) if self.enabled else frozenset()
        if wanted == self._applied:
            return
        if self.enabled:
            await vtep_filter.converge(set(wanted))
        else:
            await vtep_filter.remove()
        self._applied = wanted

    def forget(self) -> None:
        self._applied = None
