"""Placement constraints, Docker's syntax: node.hostname==NAME, node.hostname!=NAME.

Only the host's name is known to vxmesh (no node labels or roles yet); the
short form host==NAME is accepted too.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from proto.errors import InvalidArgument

_CONSTRAINT = re.compile(r"^\s*(node\.hostname|host)\s*(==|!=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    equal: bool
    host: str

    def allows(self, host: str) -> bool:
        return (host == self.host) == self.equal


def parse(text: str) -> Constraint:
    match = _CONSTRAINT.match(text)
    if match is None:
        raise InvalidArgument(f"invalid constraint {text!r}: use node.hostname==NAME or node.hostname!=NAME")
    return Constraint(match.group(2) == "==", match.group(3))


def allows(constraints: Iterable[str], host: str) -> bool:
    """Whether a task may run on `host`: every constraint holds."""
    return all(parse(c).allows(host) for c in constraints)
