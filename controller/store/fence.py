"""A leader's fence: the writes of a controller that leads a role hold only while it still does.

Leadership is a key bound to the leader's lease (controller/services/election.py).
The key's mod revision names one term of leadership: a lost lease deletes the
key, and the next leader's key has a later revision. Every transaction a
leader commits compares that revision, so a deposed leader that has not yet
noticed (a paused process, a slow keepalive) writes nothing at all.
"""
from __future__ import annotations

from dataclasses import dataclass

from controller.etcd import Compare, Etcd
from proto.errors import FailedPrecondition


class NotLeader(FailedPrecondition):
    """This controller's term is over: another leads, or nobody does."""


@dataclass(frozen=True)
class Fence:
    key: str          # the role's leader key
    revision: int     # its mod revision in this term

    @property
    def compare(self) -> Compare:
        return Compare.mod_revision(self.key, "=", self.revision)

    async def check(self, etcd: Etcd) -> None:
        """Raise NotLeader once the term is over (before building a write that would fail)."""
        kv = await etcd.get(self.key)
        if kv is None or kv.mod_revision != self.revision:
            raise NotLeader(f"this controller no longer leads ({self.key})")
