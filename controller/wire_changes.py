"""Each view change encoded for the wire once, whatever the number of streams.

Every agent that takes part in a network gets the same change for a new
endpoint: the same key and the same record object (the index decodes each
etcd value once and every view shares it). Building the protobuf from the
dataclass is the costly part of sending an update, so it is done once per
record and the message reused by every stream, and by the next snapshot.

Serializing is done once too: each change is kept as the bytes of its
field in a ViewUpdate, and an update for a stream is those bytes joined
(`update_bytes`: a protobuf message's encoding is its fields' encodings
one after the other). gRPC then sends the bytes as they are
(agent_link.add_to_server), so a change going to a thousand agents, or in
a thousand snapshots, is encoded once, not once per stream.
"""
from __future__ import annotations

from collections import OrderedDict

from controller.view import AgentView, Change
from proto import vxmesh_pb2 as pb

# Enough for a snapshot of the largest networks vxmesh is built for (10,000
# endpoints) plus the recent deltas; older entries are simply made again.
DEFAULT_LIMIT = 32_768


class WireChanges:
    def __init__(self, limit: int = DEFAULT_LIMIT):
        self.limit = limit
        # (key, id(record)) -> (record, message, its bytes as a ViewUpdate field).
        # The record is kept with its message, so its id cannot be reused by
        # another object meanwhile.
        self._made: OrderedDict[tuple[str, int], tuple[object, pb.Change, bytes]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        # (index, its cluster_version, the shared part of a snapshot joined, host -> its alive/ span)
        self._cluster: tuple[object, int, memoryview, dict[str, tuple[int, int]]] | None = None

    def encode(self, changes: list[Change]) -> list[pb.Change]:
        return [self.change(c) for c in changes]

    def change(self, change: Change) -> pb.Change:
        return self._entry(change)[0]

    def field(self, change: Change) -> bytes:
        """The change encoded as one `changes` field of a ViewUpdate."""
        return self._entry(change)[1]

    def update_bytes(self, revision: int, changes: list[Change], snapshot: bool = False) -> bytes:
        """A ControllerMessage carrying a ViewUpdate of `changes`, serialized."""
        head = pb.ViewUpdate(revision=revision, snapshot=snapshot).SerializeToString()
        update = b"".join([head, *map(self.field, changes)])
        return _UPDATE_TAG + _varint(len(update)) + update

    def snapshot_bytes(self, revision: int, view: AgentView) -> bytes:
        """A ControllerMessage carrying `view`'s snapshot, serialized: what
        `update_bytes(revision, view.snapshot(), snapshot=True)` gives, with the
        part every agent shares (hosts, controllers, liveness) encoded and joined
        once per change to it rather than once per agent. In a reconnect storm
        of a thousand agents that part is two thousand records per snapshot."""
        parts = [pb.ViewUpdate(revision=revision, snapshot=True).SerializeToString(),
                 *self._cluster_parts(view), *map(self.field, view.own_changes())]
        # Joined once, as the message it is: a thousand agents' snapshots at
        # once are a thousand of these, so no intermediate copies.
        return b"".join([_UPDATE_TAG, _varint(sum(map(len, parts))), *parts])

    def _cluster_parts(self, view: AgentView) -> list[bytes | memoryview]:
        index = view.index
        if self._cluster is None or self._cluster[0] is not index or self._cluster[1] != index.cluster_version:
            changes = view.cluster_changes(exclude_self=False)
            fields = [self.field(c) for c in changes]
            # Where each host's own liveness record sits, to leave it out of its own snapshot.
            spans: dict[str, tuple[int, int]] = {}
            offset = 0
            alive_prefix = index.keys.alive("")
            for change, encoded in zip(changes, fields):
                if change.key.startswith(alive_prefix):
                    spans[change.key[len(alive_prefix):]] = (offset, offset + len(encoded))
                offset += len(encoded)
            self._cluster = (index, index.cluster_version, memoryview(b"".join(fields)), spans)
        _, _, joined, spans = self._cluster
        span = spans.get(view.host)
        return [joined] if span is None else [joined[:span[0]], joined[span[1]:]]

    def _entry(self, change: Change) -> tuple[pb.Change, bytes]:
        if change.record is None:
            message = pb.Change(key=change.key, deleted=True)  # nothing to build
            return message, _field_bytes(message)
        slot = (change.key, id(change.record))
        found = self._made.get(slot)
        if found is not None and found[0] is change.record:
            self.hits += 1
            self._made.move_to_end(slot)
            return found[1], found[2]
        self.misses += 1
        message = change.to_wire()
        encoded = _field_bytes(message)
        self._made[slot] = (change.record, message, encoded)
        if len(self._made) > self.limit:
            self._made.popitem(last=False)
        return message, encoded


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int) -> bytes:
    return _varint(number << 3 | 2)   # wire type 2: length-delimited


# ViewUpdate.changes is field 3, ControllerMessage.update field 1 (proto/vxmesh.proto).
_CHANGES_TAG = _tag(pb.ViewUpdate.DESCRIPTOR.fields_by_name["changes"].number)
_UPDATE_TAG = _tag(pb.ControllerMessage.DESCRIPTOR.fields_by_name["update"].number)


def _field_bytes(message: pb.Change) -> bytes:
    body = message.SerializeToString()
    return _CHANGES_TAG + _varint(len(body)) + body


# One per controller process: the index (and so every record) is one per process too.
SHARED = WireChanges()
