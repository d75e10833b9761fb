"""Who may send this host VXLAN: the live hosts' VTEPs, never a container (agent option vtep-filter)."""
from __future__ import annotations

from collections.abc import Iterable

from agent.kernel import vtep_filter


class VtepFilter:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        # (live VTEPs, container bridges) last applied; None: not known to be applied.
        self._applied: tuple[frozenset[str], frozenset[str]] | None = None

    async def converge(self, live_vteps: Iterable[str], container_bridges: Iterable[str]) -> None:
        """VXLAN accepted from `live_vteps` only and dropped from `container_bridges`
        (the host-namespace bridges containers sit on); no table when switched off."""
        wanted = ((frozenset(live_vteps), frozenset(container_bridges)) if self.enabled
                  else (frozenset(), frozenset()))
        if wanted == self._applied:
            return
        if self.enabled:
            await vtep_filter.converge(*wanted)
        else:
            await vtep_filter.remove()
        self._applied = wanted

    def forget(self) -> None:
        self._applied = None
