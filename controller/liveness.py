"""Whether a host stays in every table: the liveness rule, pure.

An agent's stream says whether the *agent* runs; whether the *host* still
forwards its containers' traffic is a question for its data plane. Every
agent probes its peers' VTEP addresses over the underlay (agent/probes.py),
something the kernel answers whether the agent runs or not, and reports
which answer (the reach/ keys). From that and the agents' streams (the
agents/ keys), each host is:

- **up**: its agent is connected and its VTEP answers;
- **agent down**: its agent's stream is gone but its VTEP still answers its
  peers: its endpoints stay in every table for `grace` seconds from the
  moment the agent went, so an agent's restart or upgrade cuts no traffic;
- **dead**: its VTEP stopped answering at least two peers (all of them
  when fewer than two peers probe it, as in a 2-host cluster), or its agent
  stayed away past the grace period: it leaves every table (its alive/ key
  is deleted), until its agent connects again and its VTEP answers.

Only peers whose own agent is connected count (their reports go with their
lease), and a peer that has not probed the host yet has no say. Failure
cases: an underlay split into two halves makes each half declare the
other dead once each side holds two reporters (or, in a 2-host cluster,
both hosts each other); a host no peer can probe (the only one) falls back
on the grace period.

The rule runs in every controller (controller/liveness_keeper.py), reads
its inputs from etcd and writes its decision in a transaction guarded on
the host's own keys (controller/store/hosts.py, `settle`), so two
controllers agree: decisions on one host are serialized through its record.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from proto.records import HostAlive, Reachability

# How long a host whose agent stream is gone stays in the tables while its
# VTEP answers (`agent-grace` in the controller's config).
DEFAULT_GRACE_SECONDS = 120
# Peers that must find a VTEP silent before its host is declared dead.
PEERS_TO_CONVICT = 2


@dataclass(frozen=True)
class Evidence:
    """What the rule knows of one host."""
    connected: bool          # its agent's stream is open (agents/<host> exists)
    current: HostAlive | None  # its alive/ record now; None: out of the tables
    probing: int             # connected peers that probed its VTEP
    silent: int              # of those, how many found it silent


def tally(connected: Collection[str], reach: Mapping[str, Reachability]) -> dict[str, tuple[int, int]]:
    """host -> (peers probing it, peers finding it silent), from the reports of
    connected agents; one pass over every report, for every host at once."""
    counts: dict[str, list[int]] = {}
    for reporter, report in reach.items():
        if reporter not in connected:
            continue
        for found, names in ((0, report.reachable), (1, report.unreachable)):
            for name in names:
                if name == reporter:
                    continue
                count = counts.setdefault(name, [0, 0])
                count[0] += 1
                count[1] += found
    return {name: (probing, silent) for name, (probing, silent) in counts.items()}


def evidence(host: str, connected: Collection[str], current: HostAlive | None,
             reach: Mapping[str, Reachability], counts: Mapping[str, tuple[int, int]] | None = None) -> Evidence:
    """What the rule knows of `host`; `counts` is `tally`'s, when already made for every host."""
    probing, silent = (counts if counts is not None else tally(connected, reach)).get(host, (0, 0))
    return Evidence(host in connected, current, probing, silent)


def vtep_silent(ev: Evidence) -> bool:
    """Whether enough peers found the host's VTEP silent to call it dead."""
    needed = min(PEERS_TO_CONVICT, ev.probing)
    return needed > 0 and ev.silent >= needed


def stays_up(host: str, current: HostAlive | None, connected: Collection[str],
             reach: Mapping[str, Reachability]) -> bool:
    """Whether `judge` keeps `current` for `host` once its agent is connected:
    it is up already and no connected peer finds its VTEP silent. Reads only
    the peers' "silent" lists, so an agent connecting to a large cluster is
    not a pass over every report (`evidence`), nor a read of them from etcd."""
    if current is None or current.agent_down:
        return False
    return not any(host in report.unreachable for reporter, report in reach.items()
                   if reporter != host and reporter in connected)


def judge(host: str, ev: Evidence, now: float, grace: float) -> HostAlive | None:
    """The host's alive/ record as it should be now (None: out of every table).
    Returns `ev.current` itself when nothing is to change."""
    current = ev.current
    if vtep_silent(ev):
        return None
    if ev.connected:
        if current is not None and not current.agent_down:
            return current
        return HostAlive(host, agent_down=False, since=now)
    if current is None:
        return None  # only its agent brings a host back into the tables
    if not current.agent_down:
        return dataclasses.replace(current, agent_down=True, since=now)
    if now - current.since >= grace:
        return None
    return current


def state_of(host: str, alive: Mapping[str, HostAlive], connected: Collection[str]) -> str:
    """What `host ls` shows: "up", "agent down" or "down"."""
    record = alive.get(host)
    if record is None:
        return "down"
    return "up" if host in connected and not record.agent_down else "agent down"
