"""`logs --tail N`: where the last N lines of a log begin (agent/log_tail.py)."""
from __future__ import annotations

import io

import pytest

from agent import log_tail as log_tail_module
from agent.log_tail import tail_offset
from proto.errors import InvalidArgument
from proto.validate import log_tail


def tail(data: bytes, lines: int) -> bytes:
    log = io.BytesIO(data)
    return data[tail_offset(log, lines):]


def test_the_last_lines_with_or_without_a_final_newline():
    assert tail(b"a\nb\nc\n", 2) == b"b\nc\n"
    assert tail(b"a\nb\nc", 2) == b"b\nc"          # the last line still being written counts
    assert tail(b"a\nb\nc\n", 3) == b"a\nb\nc\n"
    assert tail(b"a\nb\nc\n", 10) == b"a\nb\nc\n"   # more than there are: all of it
    assert tail(b"a\nb\nc\n", 0) == b""             # nothing so far: what attach reads from
    assert tail(b"", 5) == b""
    assert tail(b"\n\n", 1) == b"\n"                # empty lines are lines


def test_lines_across_blocks(monkeypatch):
    monkeypatch.setattr(log_tail_module, "BLOCK", 3)
    data = b"".join(f"line {n}\n".encode() for n in range(100))
    assert tail(data, 7) == b"".join(f"line {n}\n".encode() for n in range(93, 100))
    assert tail(data, 100) == data and tail(data, 1) == b"line 99\n"


def test_tail_is_a_number_or_all():
    assert log_tail("") is None and log_tail("all") is None and log_tail("5") == 5
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(InvalidArgument, match="invalid --tail"):
            log_tail(bad)
