"""Port security's rules and its converger (pure: nft is faked)."""
from __future__ import annotations

import asyncio
import json

import pytest

from agent import names
from agent.convergers import port_security as converger_module
from agent.convergers.port_security import PortSecurity
from agent.host_networks import HostNetworks
from agent.kernel import port_security
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.gwbridge import GwBridgeSpec
from agent.kernel.port_security import Dropped, Port
from agent.local_state import LocalContainer
from proto.records import Attachment, ContainerSpec, Network

HOST = HostNetworks(
    host="h1", underlay_mtu=1500, gwbridge=GwBridgeSpec(),
    default_bridge=LocalBridgeSpec(name="vxmesh0", subnet="172.17.0.0/16", gateway="172.17.0.1", mtu=1500))
BLUE = Network(name="blue", subnet="10.77.0.0/24", gateway="10.77.0.1", vni=4096)
DEFAULT = Network(name="bridge", subnet="", gateway="", vni=0, driver="bridge", builtin=True)
A = Port("vbaaaa000000", "02:42:ac:11:00:02", ("172.17.0.2",))
B = Port("gwbbbb000000", "02:42:ac:12:00:02", ("172.18.0.2",))


def adds(objects: list[dict]) -> list[dict]:
    """What a transaction adds, once the table was deleted (its first three commands)."""
    return [o["add"] for o in objects[3:]]


def rules(objects: list[dict]) -> list[tuple[str, str]]:
    return [(o["rule"]["chain"], o["rule"]["comment"]) for o in adds(objects) if "rule" in o]


def test_each_port_gets_its_chains_reached_through_one_verdict_map_per_direction():
    objects = adds(port_security.ruleset([B, A]))
    maps = {o["map"]["name"]: o["map"]["elem"] for o in objects if "map" in o}
    assert maps == {
        "from_ports": [["gwbbbb000000", {"jump": {"target": "from_gwbbbb000000"}}],
                       ["vbaaaa000000", {"jump": {"target": "from_vbaaaa000000"}}]],
        "to_ports": [["gwbbbb000000", {"jump": {"target": "to_gwbbbb000000"}}],
                     ["vbaaaa000000", {"jump": {"target": "to_vbaaaa000000"}}]]}
    dispatch = {o["rule"]["chain"]: o["rule"]["expr"] for o in objects
                if "rule" in o and o["rule"]["chain"] in ("prerouting", "forward", "output")}
    assert dispatch["prerouting"] == [{"vmap": {"key": {"meta": {"key": "iifname"}}, "data": "@from_ports"}}]
    assert dispatch["forward"] == dispatch["output"] == [
        {"vmap": {"key": {"meta": {"key": "oifname"}}, "data": "@to_ports"}}]
    assert [r for r in rules(port_security.ruleset([A])) if r[0] == "from_vbaaaa000000"] == [
        ("from_vbaaaa000000", "vbaaaa000000: only from 02:42:ac:11:00:02"),
        ("from_vbaaaa000000", "vbaaaa000000: arp from 02:42:ac:11:00:02 172.17.0.2"),
        ("from_vbaaaa000000", "vbaaaa000000: ipv4 from 172.17.0.2"),
        ("from_vbaaaa000000", "vbaaaa000000: arp or ipv4 from another address"),
        ("from_vbaaaa000000", "vbaaaa000000: nothing else"),
    ]
    # The last rule of a port drops whatever was not accepted above it.
    last = [o["rule"]["expr"] for o in objects if "rule" in o and o["rule"]["chain"] == "from_vbaaaa000000"][-1]
    assert last == [{"drop": None}]
    # No ports: empty maps, the base chains and their lookups.
    empty = adds(port_security.ruleset([]))
    assert [o["map"].get("elem") for o in empty if "map" in o] == [None, None]
    assert [r[0] for r in rules(port_security.ruleset([]))] == ["prerouting", "forward", "output"]


def test_a_change_touches_only_the_ports_that_came_went_or_changed():
    moved = Port(A.ifname, A.mac, ("172.17.0.9",))
    C = Port("vbcccc000000", "02:42:ac:11:00:03", ("172.17.0.3",))
    objects = port_security.changes([A, B], [moved, C])
    touched = {json.dumps(o, sort_keys=True) for o in objects}
    named = " ".join(touched)
    assert "gwbbbb000000" in named and "vbcccc000000" in named and "vbaaaa000000" in named
    # B went: its map elements, chains and counter; C came: its counter, chains, rules, elements.
    assert {"delete": {"counter": {"family": "bridge", "table": "vxmesh_ports", "name": "spoofed_gwbbbb000000"}}} \
        in objects
    assert any(o.get("add", {}).get("counter", {}).get("name") == "spoofed_vbcccc000000" for o in objects)
    # A changed its address: its chains flushed and refilled, its counter left alone.
    assert not any("spoofed_vbaaaa000000" in json.dumps(o) and ("counter" in o.get("add", {}) or
                                                              "counter" in o.get("delete", {})) for o in objects)
    assert {"flush": {"chain": {"family": "bridge", "table": "vxmesh_ports", "name": "from_vbaaaa000000"}}} in objects
    assert ("from_vbaaaa000000", "vbaaaa000000: ipv4 from 172.17.0.9") in [
        (o["add"]["rule"]["chain"], o["add"]["rule"]["comment"]) for o in objects if "rule" in o.get("add", {})]
    assert port_security.changes([A, B], [B, A]) == []


def test_a_rebuild_carries_the_counters_of_the_ports_that_stay():
    objects = port_security.ruleset([A, B], {A.counter: Dropped(5, 500), "spoofed_gone": Dropped(9, 9)})
    counters = {o["counter"]["name"]: (o["counter"]["packets"], o["counter"]["bytes"])
                for o in adds(objects) if "counter" in o}
    assert counters == {"spoofed_vbaaaa000000": (5, 500), "spoofed_gwbbbb000000": (0, 0)}


def test_the_table_is_rebuilt_only_when_its_shape_differs(monkeypatch):
    applied = []

    async def listing(args, netns=None):
        return adds(applied[-1]) if applied else None

    async def apply(objects, netns=None):
        applied.append(objects)

    monkeypatch.setattr(port_security.nft, "listing", listing)
    monkeypatch.setattr(port_security.nft, "apply", apply)
    asyncio.run(port_security.converge(None, [A, B]))
    asyncio.run(port_security.converge(None, [B, A]))   # the same, in another order
    assert len(applied) == 1
    moved = Port(A.ifname, A.mac, ("172.17.0.9",))      # an address changed: its comment did
    asyncio.run(port_security.converge(None, [moved, B]))
    assert len(applied) == 2


@pytest.mark.parametrize("port, named", [
    (lambda: Port("vbaaaa000000", "02:42:ac:11:00", ("172.17.0.2",)), "not a unicast MAC"),
    (lambda: Port("vbaaaa000000", None, ("172.17.0.2",)), "None is not a unicast MAC"),
    (lambda: Port("vbaaaa000000", "02:42:ac:11:00:02", ("172.17.0.300",)), "172.17.0.300"),
    (lambda: Port("a-name-longer-than-15", "02:42:ac:11:00:02", ("172.17.0.2",)), "a-name-longer-than-15"),
])
def test_bad_ports_are_refused(port, named):
    with pytest.raises(ValueError, match=named):
        port()


class Calls(list):
    def fake(self, name):
        async def call(*args):
            self.append((name, *args))
        return call


def test_the_converger_guards_each_namespace_once_then_sends_only_changes(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(converger_module.port_security, "converge", calls.fake("converge"))
    monkeypatch.setattr(converger_module.port_security, "remove", calls.fake("remove"))
    ps = PortSecurity(HOST, enabled=True)
    overlay_only = LocalContainer(
        spec=ContainerSpec(id="0a" * 32, name="o", host="h1",
                           attachments=[Attachment("blue", "10.77.0.2", "02:42:0a:4d:00:02")]),
        ifnames={"blue": 0, "@gwbridge": 1}, gw_ip="172.18.0.2")
    on_default = LocalContainer(
        spec=ContainerSpec(id="0b" * 32, name="d", host="h1",
                           attachments=[Attachment("bridge", "172.17.0.2", "02:42:ac:11:00:02")]),
        ifnames={"bridge": 0})
    networks = {"blue": BLUE, "bridge": DEFAULT}
    asyncio.run(ps.converge([overlay_only, on_default], networks))
    by_netns = {netns: sorted((p.ifname, p.mac, p.addresses) for p in ports) for _, netns, ports, _ in calls}
    assert by_netns == {
        None: [(names.gw_veth("0a" * 32), "02:42:ac:12:00:02", ("172.18.0.2",)),
               (names.bridge_veth("0b" * 32, 0), "02:42:ac:11:00:02", ("172.17.0.2",))],
        names.overlay_netns("h1", 4096): [(names.overlay_veth("0a" * 32, 0), "02:42:0a:4d:00:02", ("10.77.0.2",))],
    }
    assert [applied for *_, applied in calls] == [None, None]   # unknown at first: read back
    calls.clear()
    asyncio.run(ps.converge([overlay_only, on_default], networks))
    assert calls == []
    asyncio.run(ps.converge([on_default], networks))   # the overlay container removed
    ((_, netns, ports, applied),) = calls
    assert netns is None and len(ports) == 1 and len(applied) == 2   # the change from what it knows
    calls.clear()
    ps.forget()
    asyncio.run(ps.converge([on_default], networks))
    assert [(c[1], len(c[2]), c[3]) for c in calls] == [(None, 1, None)]


def test_switched_off_the_converger_removes_every_table(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(converger_module.port_security, "converge", calls.fake("converge"))
    monkeypatch.setattr(converger_module.port_security, "remove", calls.fake("remove"))
    monkeypatch.setattr(converger_module, "list_netns", lambda prefix: ["vxm-h1-ov4096"])
    ps = PortSecurity(HOST, enabled=False)
    asyncio.run(ps.converge([], {}))
    asyncio.run(ps.converge([], {}))
    assert calls == [("remove", None), ("remove", "vxm-h1-ov4096")]
    ps.forget()
    asyncio.run(ps.converge([], {}))
    assert len(calls) == 4
