"""Each view change encoded for the wire once, whatever the number of streams.

Every agent that takes part in a network gets the same change for a new
endpoint: the same key and the same record object (the index decodes each
etcd value once and every view shares it). Building the protobuf from the
dataclass is the costly part of sending an update, so it is done once per
record and the message reused by every stream, and by the next snapshot.
"""
from __future__ import annotations

from collections import OrderedDict

from controller.view import Change
from proto import vxmesh_pb2 as pb

# Enough for a snapshot of the largest networks vxmesh is built for (10,000
# endpoints) plus the recent deltas; older entries are simply made again.
DEFAULT_LIMIT = 32_768


class WireChanges:
    def __init__(self, limit: int = DEFAULT_LIMIT):
        self.limit = limit
        # (key, id(record)) -> (record, message). The record is kept with its
        # message, so its id cannot be reused by another object meanwhile.
        self._made: OrderedDict[tuple[str, int], tuple[object, pb.Change]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def encode(self, changes: list[Change]) -> list[pb.Change]:
        return [self.change(c) for c in changes]

    def change(self, change: Change) -> pb.Change:
        if change.record is None:
            return pb.Change(key=change.key, deleted=True)  # nothing to build
        slot = (change.key, id(change.record))
        found = self._made.get(slot)
        if found is not None and found[0] is change.record:
            self.hits += 1
            self._made.move_to_end(slot)
            return found[1]
        self.misses += 1
        message = change.to_wire()
        self._made[slot] = (change.record, message)
        if len(self._made) > self.limit:
            self._made.popitem(last=False)
        return message


# One per controller process: the index (and so every record) is one per process too.
SHARED = WireChanges()
