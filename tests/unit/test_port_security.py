"""Port security's rules and its converger (pure: nft is faked)."""
from __future__ import annotations

import asyncio

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


def test_each_port_gets_its_chains_reached_by_one_verdict_map_per_hook():
    objects = port_security.ruleset([B, A])
    dispatch = {o["rule"]["chain"]: [e["vmap"] for e in o["rule"]["expr"]]
                for o in adds(objects) if "rule" in o and o["rule"]["chain"] in ("prerouting", "forward", "output")}
    assert dispatch["prerouting"][0]["data"]["set"] == [
        ["gwbbbb000000", {"jump": {"target": "from_gwbbbb000000"}}],
        ["vbaaaa000000", {"jump": {"target": "from_vbaaaa000000"}}]]
    assert dispatch["forward"] == dispatch["output"]
    assert [r for r in rules(objects) if r[0] == "from_vbaaaa000000"] == [
        ("from_vbaaaa000000", "vbaaaa000000: only from 02:42:ac:11:00:02"),
        ("from_vbaaaa000000", "vbaaaa000000: arp from 02:42:ac:11:00:02 172.17.0.2"),
        ("from_vbaaaa000000", "vbaaaa000000: ipv4 from 172.17.0.2"),
        ("from_vbaaaa000000", "vbaaaa000000: arp or ipv4 from another address"),
        ("from_vbaaaa000000", "vbaaaa000000: nothing else"),
    ]
    # The last rule of a port drops whatever was not accepted above it.
    last = [o["rule"]["expr"] for o in adds(objects)
            if "rule" in o and o["rule"]["chain"] == "from_vbaaaa000000"][-1]
    assert last == [{"drop": None}]
    # No ports: the base chains only, no empty map.
    assert rules(port_security.ruleset([])) == []


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


def test_the_converger_guards_each_namespace_once_until_forgotten(monkeypatch):
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
    by_netns = {netns: sorted((p.ifname, p.mac, p.addresses) for p in ports) for _, netns, ports in calls}
    assert by_netns == {
        None: [(names.gw_veth("0a" * 32), "02:42:ac:12:00:02", ("172.18.0.2",)),
               (names.bridge_veth("0b" * 32, 0), "02:42:ac:11:00:02", ("172.17.0.2",))],
        names.overlay_netns("h1", 4096): [(names.overlay_veth("0a" * 32, 0), "02:42:0a:4d:00:02", ("10.77.0.2",))],
    }
    calls.clear()
    asyncio.run(ps.converge([overlay_only, on_default], networks))
    assert calls == []
    asyncio.run(ps.converge([on_default], networks))   # the overlay container removed
    assert [(c[1], len(c[2])) for c in calls] == [(None, 1)]
    calls.clear()
    ps.forget()
    asyncio.run(ps.converge([on_default], networks))
    assert [(c[1], len(c[2])) for c in calls] == [(None, 1)]


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
