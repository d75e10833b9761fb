"""Which control-plane ports containers are kept off, and the rules that do it (pure)."""
from __future__ import annotations

import asyncio

import pytest

from agent.guards import control_plane_guards
from agent.kernel import firewall
from agent.kernel.firewall import BridgeRules, Guard, HostRules

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
    guard = next(i for i, expr in enumerate(forward)
                 if any(m.get("match", {}).get("right") == "10.0.0.2" for m in expr))
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
