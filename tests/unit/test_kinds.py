"""The one table of record kinds (proto/kinds.py) agrees with the wire format and
the key layout, and its audiences name who sees what (all pure)."""
from __future__ import annotations

import dataclasses

import pytest

from controller.keys import Keys
from proto import records
from proto import vxmesh_pb2 as pb
from proto.kinds import BY_WIRE, KINDS, STREAMED, WIRE_OF, Audience
from proto.records import ContainerSpec, Endpoint, HostAlive, Network, Record


def record_classes() -> list[type[Record]]:
    return [c for c in vars(records).values()
            if isinstance(c, type) and issubclass(c, Record) and c is not Record]


def test_the_streamed_kinds_are_exactly_the_records_a_change_carries():
    oneof = pb.Change.DESCRIPTOR.oneofs_by_name["record"]
    assert {f.name for f in oneof.fields} == set(BY_WIRE) == {k.wire for k in KINDS if k.name in STREAMED}
    for field in oneof.fields:
        kind = BY_WIRE[field.name]
        assert field.message_type.name == kind.record.WIRE, field.name
        assert WIRE_OF[kind.record] == field.name


@pytest.mark.parametrize("cls", record_classes(), ids=lambda c: c.__name__)
def test_every_record_has_the_fields_of_its_message(cls):
    message = getattr(pb, cls.WIRE)
    assert {f.name for f in dataclasses.fields(cls)} == {f.name for f in message.DESCRIPTOR.fields}


def test_every_kind_has_its_directory_and_parts_in_the_key_layout():
    keys = Keys("/vx/")
    assert len({k.directory for k in KINDS}) == len(KINDS)
    for kind in KINDS:
        parts = tuple(f"p{i}" for i in range(len(kind.parts)))
        key = keys.key(kind.name, *parts)
        assert key == f"/vx/{kind.directory}/" + "/".join(parts)
        assert keys.parse(key) == (kind.name, parts)
    with pytest.raises(ValueError, match="name parts"):
        keys.key("endpoint", "blue")


def test_audiences_name_who_sees_each_record():
    by_name = {k.name: k for k in KINDS}
    ep = Endpoint(network="blue", container="c", host="h2", vtep="192.0.2.2", ip="10.1.0.2", mac="02:42:0a:01:00:02")
    spec = ContainerSpec(id="ab" * 32, name="c", host="h2")
    cases = [
        (by_name["endpoint"].audience_of(("blue", "c"), ep), (Audience.MEMBERS, "blue")),
        (by_name["network"].audience_of(("blue",), Network("blue", "", "", 0)), (Audience.MEMBERS, "blue")),
        (by_name["container"].audience_of(("c",), spec), (Audience.PLACED_HOST, "h2")),
        (by_name["container"].audience_of(("c",), None), (Audience.PLACED_HOST, "")),
        (by_name["alive"].audience_of(("h2",), HostAlive("h2")), (Audience.OTHER_HOSTS, "h2")),
        (by_name["host"].audience_of(("h2",), None), (Audience.EVERY_HOST, "")),
        (by_name["status"].audience_of(("c",), None), (Audience.NOBODY, "")),
        (by_name["ipam"].audience_of(("blue", "10.1.0.2"), None), (Audience.NOBODY, "")),
    ]
    for got, wanted in cases:
        assert got == wanted
    # Host h1 holding the table of blue, not red:
    reached = {audience: [audience.reaches(subject, "h1", {"blue"})
                          for subject in ("h1", "h2", "blue", "red", "")]
               for audience in Audience}
    assert reached == {
        Audience.NOBODY: [False] * 5,
        Audience.EVERY_HOST: [True] * 5,
        Audience.OTHER_HOSTS: [False, True, True, True, True],
        Audience.PLACED_HOST: [True, False, False, False, False],
        Audience.MEMBERS: [False, False, True, False, False],
    }
