"""Which control-plane ports containers are kept off, and the rules that do it (pure)."""
from __future__ import annotations

import asyncio

import pytest

from agent.guards import cluster_guards, control_plane_guards
from agent.kernel import firewall
from agent.kernel.firewall import BridgeRules, Guard, HostRules
from proto.records import ControllerInfo, Host

GW = BridgeRules("vxm_gwbridge", "172.18.0.0/16", "172.18.0.1", icc=False)
BR = BridgeRules("vxmesh0", "172.17.0.0/16", "172.17.0.1", icc=True)


def test_guards_cover_the_agent_api_and_every_controller():
    guards = asyncio.run(control_plane_guards(
        "10.0.0.11:7947", ["10.0.0.2:7946", "10.0.0.3:8946", "unix:///run/vxmesh/c.sock"]))
    assert set(guards) == {Guard(7947), Guard(7946), Guard(8946),
                           Guard(7946, "10.0.0.2"), Guard(8946, "10.0.0.3")}
    with pytest.raises(ValueError, match="controller address '10.0.0.2' is not HOST:PORT"):
        asyncio.run(control_plane_guards("10.0.0.11:7947", ["10.0.0.2"]))


def _rules(chain: str, transaction: dict) -> list[list[dict]]:
    return [o["add"]["rule"]["expr"] for o in transaction["nftables"]
            if "rule" in o.get("add", {}) and o["add"]["rule"]["chain"] == chain]


def test_guard_rules_drop_before_any_forward_accept():
    rules = HostRules(bridges=(GW, BR), ports=(), guards=(Guard(7947), Guard(7946, "10.0.0.2")))
    transaction = firewall.ruleset(rules)
    forward = _rules("forward", transaction)
    first_accept = next(i for i, expr in enumerate(forward) if {"accept": None} in expr)
    guard = next(i for i, expr in enumerate(forward) if "'10.0.0.2', 7946" in str(expr))
    assert guard < first_accept and {"drop": None} in forward[guard]
    inputs = [str(expr) for expr in _rules("input", transaction)]
    assert any("[7946, 7947]" in e and "'tcp'" in e for e in inputs)   # on the host itself
    # VXLAN from containers is dropped by the VTEP filter's table, whose
    # counters outlive this table's rebuilds (tests/integration/test_vtep_filter.py).
    assert "4789" not in str(transaction)
    # Without guards nothing about control-plane ports appears.
    assert "7947" not in str(firewall.ruleset(HostRules(bridges=(GW, BR), ports=())))


@pytest.mark.parametrize("guard, named", [
    (Guard(0), r"guards\[0\]\.port 0"),
    (Guard(True), r"guards\[0\]\.port True"),
    (Guard(7946, "controller"), r"guards\[0\]\.address 'controller'"),
])
def test_bad_guards_are_refused_naming_the_field(guard, named):
    with pytest.raises(ValueError, match=named):
        firewall.ruleset(HostRules(bridges=(GW,), ports=(), guards=(guard,)))


def test_guards_take_bracketed_ipv6_controllers():
    # Containers' networks are IPv4: the port is closed on the host, and an
    # IPv6 address needs no guard of its own, since no container can send to it.
    guards = asyncio.run(control_plane_guards("[fd00::11]:7947", ["[fd00::2]:7946", "10.0.0.3:7946"]))
    assert set(guards) == {Guard(7947), Guard(7946), Guard(7946, "10.0.0.3")}
    with pytest.raises(ValueError, match="controller address 'fd00::2:7946' is not HOST:PORT"):
        asyncio.run(control_plane_guards("10.0.0.11:7947", ["fd00::2:7946"]))


def test_the_cluster_guards_follow_every_host_and_controller_in_the_view():
    hosts = [Host(name="h1", vtep="10.0.0.11", api="10.0.0.11:7947"),
             Host(name="h2", vtep="10.0.0.12", api="0.0.0.0:7001"),      # an API on every address
             Host(name="h3", vtep="10.0.0.13", api="[fd00::13]:7947")]   # no container sends IPv6
    controllers = [ControllerInfo(name="ctl-1", listen=["10.0.0.2:7946", "[fd00::2]:7946"],
                                  etcd_client=["10.0.0.5:2379", "10.0.0.6:2379"],
                                  etcd_peer=["10.0.0.5:2380", "10.0.0.6:2380", "not an address"]),
                   ControllerInfo(name="ctl-2", listen=["10.0.0.3:8946"], etcd_client=["10.0.0.5:2379"])]
    assert cluster_guards(hosts, controllers) == {
        Guard(7947, "10.0.0.11"), Guard(7001, "10.0.0.12"), Guard(7947, "10.0.0.13"),
        Guard(7946, "10.0.0.2"), Guard(8946, "10.0.0.3"),
        Guard(2379, "10.0.0.5"), Guard(2379, "10.0.0.6"), Guard(2380, "10.0.0.5"), Guard(2380, "10.0.0.6"),
    }
    # A controller gone (its record expired) takes its guard with it.
    assert Guard(8946, "10.0.0.3") not in cluster_guards(hosts, controllers[:1])
    assert cluster_guards([], []) == set()


def test_any_number_of_remote_guards_is_one_set_lookup():
    guards = tuple(Guard(7947, f"10.0.{i // 250}.{i % 250 + 1}") for i in range(500)) + (Guard(2379, "10.9.0.5"),)
    forward = _rules("forward", firewall.ruleset(HostRules(bridges=(GW, BR), ports=(), guards=guards)))
    (guard_rule,) = [expr for expr in forward if "10.9.0.5" in str(expr)]
    (elements,) = [m["match"]["right"]["set"] for m in guard_rule if "match" in m and "concat" in m["match"]["left"]]
    assert len(elements) == 501 and {"concat": ["10.9.0.5", 2379]} in elements
    input_ports = [m["match"]["right"] for expr in _rules("input", firewall.ruleset(
        HostRules(bridges=(GW, BR), ports=(), guards=guards))) for m in expr if "match" in m
        and m["match"]["left"] == {"payload": {"protocol": "tcp", "field": "dport"}}]
    assert input_ports == [{"set": [2379, 7947]}]   # every guarded port, closed on the host itself
