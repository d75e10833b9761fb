"""The FDB and neighbour entries of each overlay network: the view's remote
endpoints against what the kernel holds, read back on every pass."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from agent import names
from agent.kernel import table
from agent.table_diff import desired_entries, plan
from agent.view import View
from proto import timing
from proto.records import Network

log = logging.getLogger(__name__)


class Tables:
    def __init__(self, host: str, view: View):
        self.host = host
        self.view = view

    async def converge(self, networks: Sequence[Network], began: float) -> None:
        for network in networks:
            await self._converge(network, began)

    def forget(self) -> None:
        """Nothing to drop: the entries are read back from the kernel on every pass, which is
        what heals a stale one."""

    async def _converge(self, network: Network, began: float) -> None:
        netns = names.overlay_netns(self.host, network.vni)
        want_fdb, want_neigh = desired_entries(self.view.endpoints(network.name), self.host)
        have_fdb = await table.read_fdb(netns, network.vni)
        have_neigh = await table.read_neighbours(netns, network.vni)
        todo = plan(want_fdb, want_neigh, have_fdb, have_neigh)
        if not todo:
            return
        errors = await table.program(netns, network.vni, todo.fdb_put, todo.fdb_del,
                                     todo.neigh_put, todo.neigh_del)
        if errors:
            raise RuntimeError(f"network {network.name}: {len(errors)} table entries failed: {errors[:3]}")
        # One event per table change (a batch, never per entry), with wall-clock
        # stamps to line up with the controller's.
        timing.emit(log, timing.TABLE_PROGRAMMED, network=network.name, host=self.host,
                    fdb_put=len(todo.fdb_put), fdb_del=len(todo.fdb_del), neigh_put=len(todo.neigh_put),
                    neigh_del=len(todo.neigh_del), update=self.view.updated_at, began=began,
                    programmed=time.time())
