"""The store's one retry policy (controller/store/transaction.py), against a scripted etcd."""
from __future__ import annotations

import pytest

from controller.etcd import Compare, EtcdUnavailable, Op, Txn, TxnResult
from controller.host_view import host_view
from controller.store.transaction import Commit, Settled, retrying, surface_unavailable
from proto.errors import Aborted, AlreadyExists, Unavailable
from proto.records import Host, HostAlive


class ScriptedEtcd:
    """Answers each transaction with the next outcome; records what it was sent."""

    def __init__(self, *outcomes: bool):
        self.outcomes = list(outcomes)
        self.sent: list[tuple[list, list]] = []

    async def txn(self, compares, ops):
        self.sent.append((list(compares), list(ops)))
        return TxnResult(succeeded=self.outcomes.pop(0), revision=len(self.sent))


def write(n: int) -> Commit[str]:
    return Commit(Txn([Compare.absent("/k")], [Op.put("/k", str(n).encode())]), f"done after {n}")


async def test_a_lost_race_reads_again_and_the_first_commit_answers():
    etcd = ScriptedEtcd(False, False, True)
    seen = []

    async def attempt(lost: int):
        seen.append(lost)
        return write(lost)

    assert await retrying(etcd, attempt, what="write k") == "done after 2"
    assert seen == [0, 1, 2] and [ops[0].value for _, ops in etcd.sent] == [b"0", b"1", b"2"]


async def test_a_settled_attempt_writes_nothing_and_a_refusal_passes_through():
    etcd = ScriptedEtcd(False)

    async def settles(lost: int):
        return write(lost) if lost == 0 else Settled("already so")

    assert await retrying(etcd, settles, what="write k") == "already so"
    assert len(etcd.sent) == 1

    async def refuses(lost: int):
        raise AlreadyExists("k already exists")

    with pytest.raises(AlreadyExists, match="k already exists"):
        await retrying(ScriptedEtcd(), refuses, what="write k")


async def test_bounded_attempts_end_in_one_aborted_message():
    etcd = ScriptedEtcd(*[False] * 3)

    async def attempt(lost: int):
        return write(lost)

    with pytest.raises(Aborted, match="^could not write k: the keys kept changing concurrently; try again$"):
        await retrying(etcd, attempt, what="write k", changing="the keys", attempts=3)
    assert len(etcd.sent) == 3


async def test_a_lost_etcd_is_the_users_unavailable():
    @surface_unavailable
    async def read():
        raise EtcdUnavailable("etcd at 127.0.0.1:2379 is unreachable")

    with pytest.raises(Unavailable, match="unreachable"):
        await read()


def test_the_host_view_fills_state_and_count_without_touching_the_record():
    host = Host(name="h1", vtep="192.0.2.1")
    shown = host_view(host, {"h1": HostAlive("h1")}, {"h1"}, 3)
    assert (shown.state, shown.containers) == ("up", 3)
    assert (host_view(host, {}, set(), 0).state, host.state, host.containers) == ("down", "down", 0)
