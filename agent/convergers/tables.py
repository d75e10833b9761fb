"""The FDB and neighbour entries of each overlay network: the view's remote
endpoints against what the kernel holds.

A network's table can hold tens of thousands of entries, and a pass is woken
by every change (a container starting on this host is one): reading the
whole table back from the kernel and comparing it on every pass made each
pass cost time in proportion to the table, not to the change. So the
kernel's table is read back and compared whole only on a network's first
pass, after `forget` (the periodic pass, and the one after a failed pass:
what heals a stale or missing entry) or when the network's record changed;
in between, a pass skips a network whose endpoints did not change (the
view's change stamp), and plans a change from the changed endpoints alone,
against the endpoints it last programmed (kept as the view's records, not as
entries: no string of its own per entry)."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from agent import names
from agent.kernel import table
from agent.table_diff import changed_keys, desired_entries, partial_plan, plan
from agent.view import View
from proto import timing
from proto.records import Endpoint, Network

log = logging.getLogger(__name__)


@dataclass
class _Programmed:
    """What one network's table was last made to hold, and from what."""
    network: Network                  # the record as it was then
    stamp: tuple[int, int]            # the view's change stamp of its endpoints then
    endpoints: dict[str, Endpoint]    # its endpoints then, by key: the kernel holds their entries since


class Tables:
    def __init__(self, host: str, view: View):
        self.host = host
        self.view = view
        self._programmed: dict[str, _Programmed] = {}
        # Networks whose kernel table was read back and compared whole, for tests
        # and the log: a pass woken by one change must not add to it.
        self.full_reads = 0

    async def converge(self, networks: Sequence[Network], began: float) -> None:
        wanted = {network.name for network in networks}
        for name in [name for name in self._programmed if name not in wanted]:
            del self._programmed[name]   # its namespace goes: built again, it starts empty
        for network in networks:
            await self._converge(network, began)

    def forget(self) -> None:
        """Read every table back from the kernel on the next pass: what heals a stale
        or missing entry."""
        self._programmed.clear()

    async def _converge(self, network: Network, began: float) -> None:
        known = self._programmed.pop(network.name, None)
        if known is not None and known.network != network:
            known = None
        # Stamp and endpoints together, with no await between: the same state.
        stamp = self.view.endpoints_changed(network.name)
        if known is not None and known.stamp == stamp:
            self._programmed[network.name] = known
            return
        now = dict(self.view.endpoints_by_key(network.name))
        netns = names.overlay_netns(self.host, network.vni)
        if known is not None:
            todo = partial_plan(known.endpoints, now, changed_keys(known.endpoints, now), self.host)
        else:
            self.full_reads += 1
            want_fdb, want_neigh = desired_entries(now.values(), self.host)
            have_fdb = await table.read_fdb(netns, network.vni)
            have_neigh = await table.read_neighbours(netns, network.vni)
            todo = plan(want_fdb, want_neigh, have_fdb, have_neigh)
            del want_fdb, want_neigh, have_fdb, have_neigh    # not kept: tens of thousands of strings
        if todo:
            errors = await table.program(netns, network.vni, todo.fdb_put, todo.fdb_del,
                                         todo.neigh_put, todo.neigh_del)
            if errors:
                # Nothing remembered: the next pass reads the kernel's table back.
                raise RuntimeError(f"network {network.name}: {len(errors)} table entries failed: {errors[:3]}")
            # One event per table change (a batch, never per entry), with wall-clock
            # stamps to line up with the controller's.
            timing.emit(log, timing.TABLE_PROGRAMMED, network=network.name, host=self.host,
                        fdb_put=len(todo.fdb_put), fdb_del=len(todo.fdb_del), neigh_put=len(todo.neigh_put),
                        neigh_del=len(todo.neigh_del), update=self.view.updated_at, began=began,
                        programmed=time.time())
        self._programmed[network.name] = _Programmed(network, stamp, now)
