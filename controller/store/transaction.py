"""The one retry policy of every state change, and how a lost etcd reaches the user.

etcd is the only source of truth and several controllers may share it, so
a change trusts nothing it read: it is one transaction guarded by compares
on what it read, and a failed compare means "someone else changed it",
answered by reading again. `retrying` runs that loop for every change in
the store: read and build (an `attempt`), commit, back off with jitter, and
after a bounded number of lost races give up with one Aborted message.
"""
from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, ParamSpec, TypeVar

from controller.etcd import Etcd, EtcdUnavailable, Txn
from proto.errors import Aborted, Unavailable

P = ParamSpec("P")
T = TypeVar("T")

# Lost races before giving up. Address allocation gets more: many containers
# created at once on one network all compete for the same low addresses.
ATTEMPTS = 10
ALLOCATION_ATTEMPTS = 20


@dataclass
class Commit(Generic[T]):
    """Write `txn`; once it commits, the change's answer is `result`."""
    txn: Txn
    result: T


@dataclass
class Settled(Generic[T]):
    """Nothing to write: what was read already answers."""
    result: T


Attempt = Callable[[int], Awaitable[Commit[T] | Settled[T]]]


async def retrying(etcd: Etcd, attempt: Attempt[T], *, what: str, changing: str = "it",
                   attempts: int = ATTEMPTS) -> T:
    """Run `attempt(n)` (read, check, build the guarded transaction; n counts the
    races lost so far) until its transaction commits or it settles; refusals are
    the UserErrors it raises. Aborted after `attempts` lost races, as
    "could not WHAT: CHANGING kept changing concurrently"."""
    for n in range(attempts):
        step = await attempt(n)
        if isinstance(step, Settled):
            return step.result
        if (await etcd.txn(step.txn.compares, step.txn.ops)).succeeded:
            return step.result
        # Jitter so racing controllers do not retry in lockstep; the next read
        # tells what changed.
        await asyncio.sleep(random.uniform(0, 0.005 * (n + 1)))
    raise Aborted(f"could not {what}: {changing} kept changing concurrently; try again")


def surface_unavailable(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn a lost etcd into the user-facing Unavailable the API layer reports."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except EtcdUnavailable as exc:
            raise Unavailable(str(exc)) from exc

    return wrapper
