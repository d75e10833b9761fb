"""The agent's network drivers: the registry, and what each plans for an attachment (pure)."""
from __future__ import annotations

import dataclasses

import pytest

from agent import container_network as plan
from agent import drivers
from agent.drivers import bridge, overlay
from agent.drivers.base import PortTarget
from agent.host_networks import HostNetworks
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.gwbridge import GwBridgeSpec
from agent.kernel.veth import Interface
from agent.local_state import LocalContainer
from proto.records import Attachment, ContainerSpec, Network, PortMapping

CID = "cd" * 32
NID = "0123456789abcdef" * 4
HOST = HostNetworks(
    host="h1", underlay_mtu=1500, gwbridge=GwBridgeSpec(),
    default_bridge=LocalBridgeSpec(name="vxmesh0", subnet="172.17.0.0/16", gateway="172.17.0.1", mtu=1500))
BLUE = Network(name="blue", subnet="10.77.0.0/24", gateway="10.77.0.1", vni=4096)
DEFAULT = Network(name="bridge", subnet="", gateway="", vni=0, driver="bridge", builtin=True)
LAN = Network(name="lan", subnet="10.50.0.0/24", gateway="10.50.0.1", vni=0, driver="bridge", id=NID)


def test_the_network_driver_field_picks_the_driver():
    assert drivers.driver_of(BLUE) is overlay.DRIVER
    assert drivers.driver_of(LAN) is bridge.DRIVER
    assert list(drivers.DRIVERS) == ["overlay", "bridge"]   # the order a pass converges them
    odd = dataclasses.replace(BLUE, name="odd", driver="macvlan")
    with pytest.raises(drivers.UnknownDriver, match="network 'odd' uses driver 'macvlan'"):
        drivers.driver_of(odd)
    assert drivers.by_driver([LAN, BLUE, DEFAULT]) == {"overlay": [BLUE], "bridge": [LAN, DEFAULT]}
    assert drivers.by_driver([]) == {"overlay": [], "bridge": []}


def test_container_bridges_are_the_gwbridge_and_every_drivers_host_bridges():
    # What the VTEP filter drops VXLAN from: overlays add no bridge of their own here.
    assert drivers.container_bridge_names([BLUE], HOST) == {"vxm_gwbridge", "vxmesh0"}
    assert drivers.container_bridge_names([BLUE, LAN], HOST) == {"vxm_gwbridge", "vxmesh0", "vxb0123456789"}


def test_an_overlay_attachment_is_a_veth_into_the_network_namespace():
    attachment = Attachment("blue", "10.77.0.5", "02:42:0a:4d:00:05")
    iface = overlay.DRIVER.interface(CID, 2, attachment, BLUE, HOST, default_route=True)
    assert iface == Interface(container_netns="vxm-h1-ccdcdcdcdcdcd",
                              ifname="eth2", peer_netns="vxm-h1-ov4096", peer_ifname="vecdcdcdcdcd2",
                              bridge="br0", address="10.77.0.5/24", mac="02:42:0a:4d:00:05", mtu=1450,
                              default_gateway=None)
    assert overlay.DRIVER.port_target(attachment, BLUE, HOST) is None
    assert overlay.DRIVER.host_bridges([BLUE], HOST) == []


def test_a_bridge_attachment_is_a_veth_onto_the_host_bridge_and_may_carry_the_default_route():
    attachment = Attachment("lan", "10.50.0.7", "02:42:0a:32:00:07")
    first = bridge.DRIVER.interface(CID, 0, attachment, LAN, HOST, default_route=True)
    assert (first.bridge, first.peer_netns, first.peer_ifname, first.address, first.default_gateway,
            first.mtu, first.hairpin) == ("vxb0123456789", None, "vbcdcdcdcdcd0", "10.50.0.7/24",
                                          "10.50.0.1", 1500, True)
    assert bridge.DRIVER.interface(CID, 0, attachment, LAN, HOST, default_route=False).default_gateway is None
    assert bridge.DRIVER.port_target(attachment, LAN, HOST) == PortTarget("10.50.0.7", "vxb0123456789")
    # The default bridge always; the built-in network is the default bridge.
    assert [b.name for b in bridge.DRIVER.host_bridges([], HOST)] == ["vxmesh0"]
    assert [b.name for b in bridge.DRIVER.host_bridges([DEFAULT, LAN], HOST)] == ["vxmesh0", "vxb0123456789"]
    assert [b.name for b in drivers.host_bridges([BLUE, LAN], HOST)] == ["vxmesh0", "vxb0123456789"]


@dataclasses.dataclass
class DirectDriver:
    """A third driver, as a new one would be: routed, its address reachable from the host."""
    name: str = "direct"
    carries_default_route: bool = True
    needs_gwbridge: bool = False

    def convergers(self, host, vtep_ip, view):
        return ()

    def interface(self, container_id, index, attachment, network, host, default_route):
        return Interface(container_netns="c", ifname=f"eth{index}", peer_netns=None, peer_ifname=f"d{index}",
                         bridge="direct0", address=f"{attachment.ip}/24", mac=None, mtu=1500,
                         default_gateway=network.gateway if default_route else None)

    def port_target(self, attachment, network, host):
        return PortTarget(attachment.ip, "direct0")

    def host_bridges(self, networks, host):
        return []


def test_a_new_driver_needs_only_its_registry_row(monkeypatch):
    monkeypatch.setitem(drivers.DRIVERS, "direct", DirectDriver())
    networks = {"blue": BLUE, "dmz": Network(name="dmz", subnet="10.60.0.0/24", gateway="10.60.0.1", vni=0,
                                             driver="direct")}
    spec = ContainerSpec(id=CID, name="c", host="h1", ports=[PortMapping("tcp", 8080, 80)], attachments=[
        Attachment("blue", "10.77.0.2", "02:42:0a:4d:00:02"),
        Attachment("dmz", "10.60.0.2", "02:42:0a:3c:00:02")])
    record = LocalContainer(spec=spec)
    plan.assign_ifnames(record, spec, networks)
    # It carries the default route, so the overlay container needs no gwbridge.
    assert record.ifnames == {"blue": 0, "dmz": 1}
    assert [(i.ifname, i.default_gateway) for i in plan.interfaces(spec, networks, record, HOST)] == [
        ("eth0", None), ("eth1", "10.60.0.1")]
    assert [(r.target_ip, r.bridge) for r in plan.port_rules(spec, networks, record, HOST)] == [
        ("10.60.0.2", "direct0")]
