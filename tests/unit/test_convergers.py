"""The convergers remember what they built and forget it on demand; the
reconciler runs them in the order of a pass (no kernel: its calls are faked)."""
from __future__ import annotations

import asyncio

import pytest

from agent.convergers import host_firewall, local_bridges, overlay_networks
from agent.convergers import vtep_filter as vtep_filter_converger
from agent.convergers.containers import Containers
from agent.convergers.host_firewall import HostFirewall
from agent.convergers.local_bridges import LocalBridges
from agent.convergers.overlay_networks import OverlayNetworks
from agent.convergers.vtep_filter import VtepFilter
from agent.drivers import bridge
from agent.host_networks import HostNetworks
from agent.images.store import ImageStore
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.gwbridge import GwBridgeSpec
from agent.local_state import LocalContainer, LocalState
from agent.reconcile import Reconciler
from agent.view import View
from proto.records import Attachment, ContainerSpec, Network, PortMapping

HOST = HostNetworks(
    host="h1", underlay_mtu=1500, gwbridge=GwBridgeSpec(),
    default_bridge=LocalBridgeSpec(name="vxmesh0", subnet="172.17.0.0/16", gateway="172.17.0.1", mtu=1500))
BLUE = Network(name="blue", subnet="10.77.0.0/24", gateway="10.77.0.1", vni=4096)
LAN = Network(name="lan", subnet="10.50.0.0/24", gateway="10.50.0.1", vni=0, driver="bridge",
              id="0123456789abcdef" * 4)


def run(coro):
    return asyncio.run(coro)


class Calls(list):
    """Records calls to faked kernel functions as (name, argument) pairs."""

    def fake(self, name, result=None):
        async def call(*args):
            self.append((name, *args))
            return result
        return call


def test_overlay_networks_build_once_until_forgotten(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(overlay_networks, "ensure_overlay", calls.fake("ensure"))
    monkeypatch.setattr(overlay_networks, "remove_overlay", calls.fake("remove"))
    monkeypatch.setattr(overlay_networks, "list_netns", lambda prefix: ["vxm-h1-ov4096", "vxm-h1-ov7"])
    overlays = OverlayNetworks(HOST, "10.99.0.1")
    run(overlays.converge([BLUE], 0.0))
    assert [c[:2] for c in calls] == [("ensure", "vxm-h1-ov4096"), ("remove", "vxm-h1-ov7")]
    spec = calls[0][2]
    assert (spec.vni, spec.gateway, spec.prefixlen, spec.vtep_ip, spec.mtu) == (4096, "10.77.0.1", 24,
                                                                                 "10.99.0.1", 1450)
    calls.clear()
    run(overlays.converge([BLUE], 0.0))
    assert [c[0] for c in calls] == ["remove"]   # built already; a stranger's namespace still goes
    overlays.forget()
    calls.clear()
    run(overlays.converge([BLUE], 0.0))
    assert [c[0] for c in calls] == ["ensure", "remove"]


def test_local_bridges_build_once_until_forgotten(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(local_bridges, "ensure_bridge", calls.fake("ensure"))
    monkeypatch.setattr(local_bridges, "remove_bridge", calls.fake("remove"))
    monkeypatch.setattr(local_bridges, "list_bridges", calls.fake("list", ["vxb0123456789", "vxbgone"]))
    bridges = bridge.DRIVER.convergers(HOST, "10.99.0.1", View("h1"))
    assert [type(c) for c in bridges] == [LocalBridges]
    (converger,) = bridges
    run(converger.converge([LAN], 0.0))
    assert [(c[0], getattr(c[1], "name", c[1])) for c in calls] == [
        ("ensure", "vxmesh0"), ("ensure", "vxb0123456789"), ("list", "vxb"), ("remove", "vxbgone")]
    calls.clear()
    run(converger.converge([LAN], 0.0))
    assert calls == []
    run(converger.converge([], 0.0))   # the network's last container left
    assert [c[0] for c in calls] == ["ensure", "list", "remove", "remove"]
    calls.clear()
    converger.forget()
    run(converger.converge([], 0.0))
    assert [c[0] for c in calls] == ["ensure", "list", "remove", "remove"]


def test_vtep_filter_applies_a_change_once(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(vtep_filter_converger.vtep_filter, "converge", calls.fake("converge"))
    monkeypatch.setattr(vtep_filter_converger.vtep_filter, "remove", calls.fake("remove"))
    on = VtepFilter(enabled=True)
    gw = {"vxm_gwbridge"}
    run(on.converge({"10.99.0.2"}, gw))
    run(on.converge({"10.99.0.2"}, gw))
    run(on.converge({"10.99.0.2", "10.99.0.3"}, gw))
    run(on.converge({"10.99.0.2", "10.99.0.3"}, gw | {"vxmesh0"}))   # a container bridge more
    assert calls == [("converge", {"10.99.0.2"}, gw), ("converge", {"10.99.0.2", "10.99.0.3"}, gw),
                     ("converge", {"10.99.0.2", "10.99.0.3"}, gw | {"vxmesh0"})]
    on.forget()
    run(on.converge({"10.99.0.2", "10.99.0.3"}, gw | {"vxmesh0"}))
    assert len(calls) == 4
    calls.clear()
    off = VtepFilter(enabled=False)
    run(off.converge({"10.99.0.2"}, gw))
    run(off.converge({"10.99.0.3"}, gw))
    assert calls == [("remove",)]


def test_host_firewall_rebuilds_only_on_change(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(host_firewall.firewall, "apply", calls.fake("apply"))
    spec = ContainerSpec(id="ef" * 32, name="web", host="h1", ports=[PortMapping("tcp", 8080, 80)],
                         attachments=[Attachment("lan", "10.50.0.2", "02:42:0a:32:00:02")])
    record = LocalContainer(spec=spec, ifnames={"lan": 0})
    fw = HostFirewall(HOST, guards=())
    networks = {"lan": LAN, "blue": BLUE}
    run(fw.converge(networks, [record]))
    run(fw.converge(networks, [record]))
    (rules,) = [c[1] for c in calls]
    assert [(b.name, b.icc) for b in rules.bridges] == [("vxm_gwbridge", False), ("vxmesh0", True),
                                                        ("vxb0123456789", True)]
    assert [(p.host_port, p.target_ip, p.bridge) for p in rules.ports] == [
        (8080, "10.50.0.2", "vxb0123456789")]
    run(fw.converge(networks, []))          # the container stopped: its port goes
    assert calls[-1][1].ports == ()
    fw.forget()
    run(fw.converge(networks, []))
    assert len(calls) == 3


class StoppedRuntime:
    """A runtime that runs nothing (the containers are not started in this test)."""

    async def state(self, container_id):
        return None


def test_gwbridge_addresses_come_from_the_one_allocator(tmp_path):
    local = LocalState(tmp_path)
    local.save(LocalContainer(spec=ContainerSpec(id="01" * 32, name="old", host="h1"), gw_ip="172.18.0.2"))
    containers = Containers(HOST, View("h1"), StoppedRuntime(), ImageStore(tmp_path / "images"), local,
                            report=lambda status: None, wake=lambda: None)

    def stopped(name, cid, network):
        return ContainerSpec(id=cid * 32, name=name, host="h1", desired="exited",
                             attachments=[Attachment(network, "10.77.0.9", "02:42:0a:4d:00:09")])
    desired = {"a": stopped("a", "0a", "blue"), "b": stopped("b", "0b", "lan"),
               "c": stopped("c", "0c", "blue")}
    records = local.load_all()
    networks = {"blue": BLUE, "lan": LAN}
    planned = containers.prepare(desired, records, networks)
    assert [r.spec.name for r in planned] == ["a", "b", "c"]   # every interface can be planned
    published = run(containers.converge(desired, records, networks, 0.0))
    assert published == []
    # Overlay-only containers get the gwbridge, past the gateway and every address taken on this host.
    assert {name: records[name].gw_ip for name in desired} == {"a": "172.18.0.3", "b": "", "c": "172.18.0.4"}


class Pass(list):
    """Stand-ins for every converger, recording the order a pass calls them in."""

    def __init__(self, failing=""):
        super().__init__()
        self.failing = failing

    def step(self, name, result=None):
        async def call(*args):
            self.append(name)
            if name == self.failing:
                raise RuntimeError(f"{name} failed")
            return result
        return call


class StandIn:
    def __init__(self, record: Pass, name: str, **methods):
        self.converge = record.step(name)
        self.forget = lambda: record.append(f"forget {name}")
        for method, result in methods.items():
            setattr(self, method, record.step(f"{name}.{method}", result))


def reconciler(tmp_path, record: Pass) -> Reconciler:
    view = View("h1")
    view.revision = 1
    link = type("Link", (), {"report": lambda self, status: None})()
    r = Reconciler(HOST, "10.99.0.1", view, StoppedRuntime(), ImageStore(tmp_path / "images"),
                   LocalState(tmp_path), link)
    assert [type(c).__name__ for c in r.network_convergers["overlay"]] == ["OverlayNetworks", "Tables"]
    r.vtep_filter = StandIn(record, "vtep filter")
    r.network_convergers = {"overlay": (StandIn(record, "overlays"), StandIn(record, "tables")),
                            "bridge": (StandIn(record, "bridges"),)}
    containers = StandIn(record, "containers", remove_gone=["gone"], remove_orphans=None, report=None)
    containers.converge = record.step("containers", [])
    containers.prepare = lambda desired, local, networks: record.append("containers.prepare") or []
    containers.report_removed = lambda removed: record.append(f"removed {removed}")
    containers.take_made_namespaces = set
    r.containers = containers
    r.port_security = StandIn(record, "port security")
    r.firewall = StandIn(record, "firewall")
    return r


def test_a_pass_runs_the_convergers_in_order(tmp_path):
    record = Pass()
    run(reconciler(tmp_path, record).reconcile())
    assert record == ["containers.remove_gone", "vtep filter", "overlays", "tables", "bridges",
                      # Port security beside the containers' pass: each interface made waits
                      # for it (test_an_interface_is_made_only_once_port_security_has_passed).
                      "containers.prepare", "containers", "port security",
                      "firewall", "containers.report",
                      # Leftovers of a crash after the report a `run` waits for.
                      "containers.remove_orphans", "removed ['gone']"]


def test_removed_containers_are_reported_even_when_the_pass_fails(tmp_path):
    record = Pass(failing="firewall")
    r = reconciler(tmp_path, record)
    with pytest.raises(RuntimeError, match="firewall failed"):
        run(r.reconcile())
    assert record[-2:] == ["firewall", "removed ['gone']"]
    record.clear()
    r.forget()
    assert sorted(record) == sorted(f"forget {name}" for name in (
        "vtep filter", "overlays", "tables", "bridges", "port security", "containers", "firewall"))


def test_a_container_whose_image_never_came_is_reported_and_its_status_goes_on_the_wire(tmp_path):
    reported = []
    containers = Containers(HOST, View("h1"), StoppedRuntime(), ImageStore(tmp_path / "images"),
                            LocalState(tmp_path), report=reported.append, wake=lambda: None)
    spec = ContainerSpec(id="0d" * 32, name="d", host="h1")
    never_started = LocalContainer(spec=spec, error="cannot pull image busybox:latest", image_error=True)
    run(containers._report_one(spec, never_started))
    (status,) = reported
    assert (status.state, status.generation, status.image_error) == ("created", 0, True)
    assert status.to_wire().generation == 0   # -1, "never started", is not a wire value


def test_a_namespace_just_made_gets_no_nft_run_for_its_absent_load_balancer(monkeypatch):
    """A container started without VIPs: its new namespace holds no table to clear;
    one that existed before (an agent restarted over it) is cleared as always."""
    from agent.convergers import service_lb as lb_converger
    from agent.convergers.service_lb import ServiceLoadBalancers
    from agent import names
    runs = []

    async def converge(netns, vips):
        runs.append((netns, vips))
    monkeypatch.setattr(lb_converger.service_lb, "converge", converge)
    monkeypatch.setattr(lb_converger, "netns_exists", lambda netns: True)
    specs = {name: ContainerSpec(id=f"{n:02d}" * 32, name=name, host="h1",
                                 attachments=[Attachment(network="blue", ip=f"10.0.0.{n + 2}", mac="")])
             for n, name in enumerate(("new", "old"))}
    balancers = ServiceLoadBalancers(HOST, View("h1"))
    balancers.made_empty({names.container_netns("h1", specs["new"].id)})
    run(balancers.converge(specs))
    assert runs == [(names.container_netns("h1", specs["old"].id), frozenset())]
    runs.clear()
    run(balancers.converge(specs))
    assert runs == []   # both known to hold none now


def test_an_interface_is_made_only_once_port_security_has_passed(monkeypatch):
    from agent.convergers import container_interfaces
    from agent.convergers.container_interfaces import ContainerInterfaces
    from proto.network_mode import NetworkMode
    made = []

    async def ensure_netns(name):
        made.append(("netns", name))

    async def ensure_interface(interface):
        made.append(("interface", interface.ifname))

    async def prune_interfaces(netns, keep):
        return []
    monkeypatch.setattr(container_interfaces, "ensure_netns", ensure_netns)
    monkeypatch.setattr(container_interfaces, "ensure_interface", ensure_interface)
    monkeypatch.setattr(container_interfaces, "prune_interfaces", prune_interfaces)
    spec = ContainerSpec(id="0e" * 32, name="web", host="h1",
                         attachments=[Attachment(network="blue", ip="10.77.0.2", mac="02:42:0a:4d:00:02")])
    networks = {"blue": Network(name="blue", subnet="10.77.0.0/24", gateway="10.77.0.1", vni=4242)}
    record = LocalContainer(spec=spec)
    interfaces = ContainerInterfaces(HOST)

    async def scenario():
        from agent import container_network as plan
        plan.assign_ifnames(record, spec, networks)
        guarded = asyncio.get_running_loop().create_future()
        building = asyncio.create_task(interfaces.build(spec, NetworkMode.of(spec), networks, record, guarded))
        for _ in range(10):
            await asyncio.sleep(0)
        assert made == [] and not building.done()      # waits: port security has not passed
        guarded.set_result(None)
        await building
        assert [kind for kind, _ in made] == ["netns", "interface"]
        # Built already: an unchanged container does not wait for a pass it does not need.
        made.clear()
        await interfaces.build(spec, NetworkMode.of(spec), networks, record, asyncio.get_running_loop().create_future())
        assert made == []
    run(scenario())
