"""The liveness rule (controller/liveness.py): pure cases, then the decision as
two controllers write it in etcd, then the probes' packet and findings logic."""
from __future__ import annotations

import asyncio
import struct

import pytest

from agent.probes import Findings, checksum, echo_reply_ident, echo_request
import itertools

from controller.liveness import evidence, judge, state_of, stays_up, tally, vtep_silent
from controller.store import Store
from proto.records import Host, HostAlive, Reachability

GRACE = 120.0
UP = HostAlive("h2", agent_down=False, since=10.0)
AGENT_DOWN = HostAlive("h2", agent_down=True, since=100.0)


def reports(**found: tuple[list[str], list[str]]) -> dict[str, Reachability]:
    return {name: Reachability(name, reachable, unreachable) for name, (reachable, unreachable) in found.items()}


def decide(connected: set[str], current: HostAlive | None, reach: dict[str, Reachability], now: float = 110.0):
    return judge("h2", evidence("h2", connected, current, reach), now, GRACE)


def test_a_connected_host_answering_its_peers_is_up_and_its_record_not_rewritten():
    reach = reports(h1=(["h2"], []), h3=(["h2"], []))
    assert decide({"h1", "h2", "h3"}, UP, reach) is UP
    assert decide({"h1", "h2", "h3"}, None, reach) == HostAlive("h2", agent_down=False, since=110.0)
    assert decide({"h1", "h2", "h3"}, AGENT_DOWN, reach) == HostAlive("h2", agent_down=False, since=110.0)


def test_an_agent_gone_while_its_vtep_answers_stays_in_the_tables_for_the_grace_period():
    reach = reports(h1=(["h2"], []), h3=(["h2"], []))
    down = decide({"h1", "h3"}, UP, reach, now=100.0)
    assert down == AGENT_DOWN
    assert decide({"h1", "h3"}, down, reach, now=100.0 + GRACE - 1) is down
    assert decide({"h1", "h3"}, down, reach, now=100.0 + GRACE) is None
    # Gone from the tables, it comes back only with its agent.
    assert decide({"h1", "h3"}, None, reach) is None


def test_a_vtep_silent_to_two_peers_is_dead_whether_its_agent_runs_or_not():
    reach = reports(h1=([], ["h2"]), h3=([], ["h2"]), h4=(["h2"], []))
    for connected in ({"h1", "h3", "h4"}, {"h1", "h2", "h3", "h4"}):
        assert decide(connected, UP, reach) is None
        assert decide(connected, AGENT_DOWN, reach) is None


def test_one_silent_peer_of_several_is_not_enough():
    reach = reports(h1=([], ["h2"]), h3=(["h2"], []), h4=(["h2"], []))
    # Its agent gone too: it is only "agent down".
    assert decide({"h1", "h3", "h4"}, UP, reach, now=100.0) == AGENT_DOWN
    # A partitioned reporter alone (its own link down) convicts nobody.
    assert decide({"h1", "h2", "h3", "h4"}, UP, reach) is UP


def test_in_a_two_host_cluster_the_one_peer_decides():
    assert decide({"h1"}, UP, reports(h1=([], ["h2"]))) is None
    assert decide({"h1"}, UP, reports(h1=(["h2"], [])), now=100.0) == AGENT_DOWN


def test_only_connected_peers_that_probed_the_host_have_a_say():
    # h3's report went with its agent (not connected); h4 has not probed h2 yet.
    reach = reports(h1=([], ["h2"]), h3=([], ["h2"]), h4=([], []))
    ev = evidence("h2", {"h1", "h4"}, UP, reach)
    assert (ev.probing, ev.silent) == (1, 1) and vtep_silent(ev)
    # A host's report on itself counts for nothing.
    assert tally({"h2"}, reports(h2=([], ["h2"]))) == {}
    # With no peer probing at all (a 1-host cluster), the grace period alone decides.
    assert decide(set(), UP, {}, now=100.0) == AGENT_DOWN


def test_the_quick_check_at_connection_never_keeps_a_record_the_rule_would_change():
    """An agent connecting skips settling in etcd when `stays_up` says so:
    whenever it does, the rule itself must keep the record."""
    findings = [([], []), (["h2"], []), ([], ["h2"])]
    kept = 0
    for current in (None, UP, AGENT_DOWN):
        for found in itertools.product(findings, repeat=3):
            reach = reports(h1=found[0], h3=found[1], h4=found[2])
            for peers in itertools.product((True, False), repeat=3):
                connected = {"h2"} | {p for p, on in zip(("h1", "h3", "h4"), peers) if on}
                if stays_up("h2", current, connected, reach):
                    kept += 1
                    assert decide(connected, current, reach) is current, (current, reach, connected)
    assert kept > 0
    # It says so for a host up with no silent connected peer; the control: one
    # connected peer finding it silent (in a two-host cluster, enough to convict)
    # sends it to etcd, as does a host not up.
    assert stays_up("h2", UP, {"h1", "h2"}, reports(h1=(["h2"], [])))
    assert not stays_up("h2", UP, {"h1", "h2"}, reports(h1=([], ["h2"])))
    assert stays_up("h2", UP, {"h2"}, reports(h1=([], ["h2"])))     # h1's report went with its agent
    assert not stays_up("h2", AGENT_DOWN, {"h1", "h2"}, {}) and not stays_up("h2", None, {"h2"}, {})


def test_host_ls_shows_up_agent_down_or_down():
    alive = {"h1": HostAlive("h1"), "h2": HostAlive("h2", agent_down=True)}
    assert [state_of(h, alive, {"h1", "h3"}) for h in ("h1", "h2", "h3")] == ["up", "agent down", "down"]


# ---- in etcd: two controllers deciding at once agree -------------------------

pytestmark_etcd = pytest.mark.asyncio(loop_scope="module")


@pytestmark_etcd
async def test_two_controllers_settle_a_host_once_and_agree(etcd, prefix):
    first, second = Store(etcd, prefix, controller_id="c1"), Store(etcd, prefix, controller_id="c2")
    for index in (1, 2, 3):
        await first.register_host(Host(name=f"h{index}", vtep=f"192.0.2.{index}"))
    leases = {name: await first.mark_alive(name, ttl=30) for name in ("h1", "h2", "h3")}
    for name in ("h1", "h2", "h3"):
        await first.settle(name, GRACE)
    assert {h.name: h.state for h in await second.list_hosts()} == {"h1": "up", "h2": "up", "h3": "up"}

    # h2's agent goes: both controllers settle at once, one write, the same answer.
    await first.mark_down(leases["h2"])
    watch_from = await etcd.revision()
    decided = await asyncio.gather(first.settle("h2", GRACE), second.settle("h2", GRACE))
    assert decided[0] == decided[1] and decided[0].agent_down
    kvs, _ = await etcd.get_prefix(f"{prefix}alive/h2")
    assert kvs[0].mod_revision == watch_from + 1
    assert (await second.get_host("h2")).state == "agent down"

    # Its VTEP stops answering both peers: out of the tables, as both see it.
    for reporter in ("h1", "h3"):
        await first.put_reach(Reachability(reporter, ["h1", "h3"], ["h2"]), leases[reporter])
    assert await asyncio.gather(first.settle("h2", GRACE), second.settle("h2", GRACE)) == [None, None]
    assert (await first.get_host("h2")).state == "down"
    # A reporter's findings go with its agent's lease.
    await first.mark_down(leases["h3"])
    assert [kv.key for kv in (await etcd.get_prefix(f"{prefix}reach/"))[0]] == [f"{prefix}reach/h1"]


# ---- the probes --------------------------------------------------------------

def test_an_echo_request_carries_a_valid_checksum_and_a_reply_is_recognised():
    packet = echo_request(0x1234, 7)
    assert checksum(packet) == 0
    ip_header = bytes([0x45]) + bytes(19)
    reply = bytes([0]) + packet[1:]
    assert echo_reply_ident(ip_header + reply) == 0x1234
    assert echo_reply_ident(ip_header + packet) is None          # a request, not a reply
    assert echo_reply_ident(ip_header + reply[:4]) is None        # truncated
    assert struct.unpack("!H", packet[6:8])[0] == 7


def test_a_peer_is_reported_silent_only_after_the_timeout_and_answering_again_clears_it():
    findings = Findings(timeout=3.0)
    peers = {"h2": "10.0.0.2", "h3": "10.0.0.3"}
    for name in peers:
        findings.probed(name, 0.0)
    findings.answered("10.0.0.2", 0.5)
    assert findings.report("h1", peers, 1.0) == Reachability("h1", ["h2"], [])
    assert findings.report("h1", peers, 3.0) == Reachability("h1", ["h2"], ["h3"])
    assert findings.report("h1", peers, 3.6) == Reachability("h1", [], ["h2", "h3"])
    findings.answered("10.0.0.3", 4.0)
    assert findings.report("h1", peers, 4.1) == Reachability("h1", ["h3"], ["h2"])
    # A peer that left the cluster is forgotten, and one that joins starts unknown.
    findings.forget_others({"h3", "h4"})
    findings.probed("h4", 4.1)
    assert findings.report("h1", {"h3": "10.0.0.3", "h4": "10.0.0.4"}, 4.2) == Reachability("h1", ["h3"], [])


# ---- the keeper: which hosts the mirror says are due a decision ---------------

def test_the_keeper_settles_only_the_hosts_whose_record_the_rule_would_change():
    from types import SimpleNamespace

    from controller.index import Index
    from controller.keys import Keys
    from controller.liveness_keeper import LivenessKeeper

    keys = Keys("/vx/")
    index = Index(keys)
    index.hosts = {keys.host(n): Host(name=n, vtep=f"192.0.2.{i}") for i, n in enumerate(("h1", "h2", "h3", "h4"), 1)}
    index.connected = {"h1", "h3", "h4"}
    index.alive_records = {"h1": HostAlive("h1", since=1.0), "h2": HostAlive("h2", since=1.0),
                           "h3": HostAlive("h3", since=1.0)}
    index.reach = reports(h1=(["h2", "h3"], ["h4"]), h3=(["h1", "h2"], ["h4"]))
    keeper = LivenessKeeper(store=None, cache=SimpleNamespace(index=index, healthy=True), grace=GRACE)
    # h1, h3: up and answering; h2: its agent just went (-> agent down); h4: connected,
    # not in the tables, and silent to both its peers (stays out, nothing to write).
    assert keeper.due(now=50.0) == ["h2"]
    index.reach = reports(h1=(["h2", "h3", "h4"], []), h3=(["h1", "h2", "h4"], []))
    assert keeper.due(now=50.0) == ["h2", "h4"]
