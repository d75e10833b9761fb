"""Which agent streams a batch of etcd changes concerns, so only those wake up.

Without this every change woke every agent's stream, which then found that
most changes were not for it: the cost of an update grew with the number of
agents connected rather than with the number that take part. The router
keeps, per stream, the host it serves and the networks its view holds, and
for each event wakes the streams of the audience its kind names
(`Kind.audience_of` in proto/kinds.py, the rule the views apply too): the
members of a network, the host a record is (or was) placed on, every host
or every other host, or nobody. A stream that was not woken keeps its older
revision; when it next wakes it replays the batches in between, which the
view filters out as before.

What concerns every stream (host records, liveness) wakes them together a
moment later (BROADCAST_SECONDS), so a burst of such changes costs each
stream one message instead of one per change: a thousand agents
reconnecting at once each change their host's records, and every one of
them was otherwise a message to every stream, a million in all.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from controller.index import StateEvent
from proto.kinds import BY_NAME, Audience
from proto.records import MESH_LEG_PREFIX

# How long a change for every stream may wait for others to go with it.
BROADCAST_SECONDS = 0.1


class Interest:
    """One stream's subscription: `relevant` when a batch may concern it, and
    `woken` set for that or for its keepalive timer (see StateCache.wait_relevant)."""

    def __init__(self, host: str, networks: Iterable[str]):
        self.host = host
        self.networks: frozenset[str] = frozenset(networks)
        # True at first, so the stream looks at what happened before it subscribed.
        self.relevant = True
        self.woken = asyncio.Event()
        self.woken.set()
        self._timer: asyncio.TimerHandle | None = None

    def mark_relevant(self) -> None:
        self.relevant = True
        self.woken.set()

    def wake_by(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Make sure `woken` is set at `deadline` at the latest. A timer already
        due earlier is kept (the waiter then asks again for what remains), so a
        busy stream re-arms one timer per keepalive period, not one per wait."""
        timer = self._timer
        if timer is not None and not timer.cancelled() and loop.time() < timer.when() <= deadline:
            return
        if timer is not None:
            timer.cancel()
        self._timer = loop.call_at(deadline, self.woken.set)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


@dataclass(frozen=True)
class Scope:
    """Which streams one revision's events may concern: every one, or those of
    `hosts` and those holding one of `networks`. Kept with the batch in the
    cache's history, so a stream replaying the batches since its revision
    skips those that cannot concern it with a set test, instead of asking
    each event's audience (a stream woken by a change for every host would
    otherwise go through every network's changes since it last looked)."""
    everyone: bool = False
    hosts: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()

    @classmethod
    def of(cls, events: list[StateEvent]) -> Scope:
        hosts: set[str] = set()
        networks: set[str] = set()
        for event in events:
            kind = BY_NAME[event.kind]
            # Asked of the old value too: a record placed on a host concerns the
            # host it was on as well as the one it is on.
            records = [r for r in (event.record, event.prev) if r is not None] or [None]
            for audience, subject in {kind.audience_of(event.parts, record) for record in records}:
                if audience is Audience.MEMBERS:
                    networks.add(subject)
                    # A host's routing-mesh leg makes it a member (controller/view.py).
                    for record in records:
                        if getattr(record, "container", "").startswith(MESH_LEG_PREFIX):
                            hosts.add(record.host)
                elif audience is Audience.PLACED_HOST and subject:
                    hosts.add(subject)
                elif audience is not Audience.NOBODY:
                    # Every (other) host, or placed on a host nobody can tell (a
                    # delete etcd kept no old value for): every stream looks,
                    # the subject's own too (its view filters out what is not its).
                    return EVERYONE
        return cls(False, frozenset(hosts), frozenset(networks))

    def concerns(self, host: str, networks: Collection[str]) -> bool:
        """Whether the stream of `host`, holding the tables of `networks`, is in it."""
        return self.everyone or host in self.hosts or not self.networks.isdisjoint(networks)


EVERYONE = Scope(everyone=True)


class InterestRouter:
    def __init__(self, broadcast_delay: float = BROADCAST_SECONDS) -> None:
        self.broadcast_delay = broadcast_delay
        self._broadcast: asyncio.TimerHandle | None = None
        self._all: set[Interest] = set()
        self._by_host: dict[str, set[Interest]] = defaultdict(set)
        self._by_network: dict[str, set[Interest]] = defaultdict(set)

    def add(self, host: str, networks: Iterable[str]) -> Interest:
        interest = Interest(host, networks)
        self._all.add(interest)
        self._by_host[host].add(interest)
        for name in interest.networks:
            self._by_network[name].add(interest)
        return interest

    def update(self, interest: Interest, networks: Iterable[str]) -> None:
        """The stream's view now holds `networks`."""
        networks = frozenset(networks)
        if networks == interest.networks or interest not in self._all:
            return
        for name in interest.networks - networks:
            self._discard(self._by_network, name, interest)
        for name in networks - interest.networks:
            self._by_network[name].add(interest)
        interest.networks = networks

    def remove(self, interest: Interest) -> None:
        interest.close()
        if interest not in self._all:
            return
        self._all.discard(interest)
        self._discard(self._by_host, interest.host, interest)
        for name in interest.networks:
            self._discard(self._by_network, name, interest)

    def route(self, events: list[StateEvent]) -> Scope:
        """Wake the streams one revision's events may concern; which those are."""
        scope = Scope.of(events)
        if scope.everyone:
            self.wake_all_soon()
            return scope
        for name in scope.networks:
            self._wake(self._by_network.get(name, ()))
        for host in scope.hosts:
            self._wake(self._by_host.get(host, ()))
        return scope

    def wake_all(self) -> None:
        self._wake(self._all)

    def wake_all_soon(self) -> None:
        """Wake every stream once `broadcast_delay` has passed since the first
        change asking for it (at once with no delay)."""
        if self.broadcast_delay <= 0:
            self.wake_all()
        elif self._broadcast is None:
            self._broadcast = asyncio.get_running_loop().call_later(self.broadcast_delay, self._broadcast_now)

    def _broadcast_now(self) -> None:
        self._broadcast = None
        self.wake_all()

    @property
    def streams(self) -> int:
        return len(self._all)

    @staticmethod
    def _wake(interests: Iterable[Interest]) -> None:
        for interest in interests:
            interest.mark_relevant()

    @staticmethod
    def _discard(table: dict[str, set[Interest]], name: str, interest: Interest) -> None:
        members = table.get(name)
        if members is not None:
            members.discard(interest)
            if not members:
                del table[name]
