"""Pure planning of a container's interfaces and published ports, and the CLI's
Docker option syntaxes."""
from __future__ import annotations

import signal

import pytest

from agent import container_network as plan
from agent.host_networks import HostNetworks
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.gwbridge import GwBridgeSpec
from agent.local_state import LocalContainer
from cli.options import CliError, parse_port, parse_signal, parse_size, parse_volume
from proto.records import Attachment, ContainerSpec, Mount, Network, PortMapping

CID = "ab" * 32
HOST = HostNetworks(
    host="h1", underlay_mtu=1500, gwbridge=GwBridgeSpec(),
    default_bridge=LocalBridgeSpec(name="vxmesh0", subnet="172.17.0.0/16", gateway="172.17.0.1", mtu=1500))
NETWORKS = {
    "blue": Network(name="blue", subnet="10.77.0.0/24", gateway="10.77.0.1", vni=4096),
    "red": Network(name="red", subnet="10.78.0.0/24", gateway="10.78.0.1", vni=4097),
    "bridge": Network(name="bridge", subnet="", gateway="", vni=0, driver="bridge", builtin=True, scope="local"),
    "lan": Network(name="lan", subnet="10.50.0.0/24", gateway="10.50.0.1", vni=0, driver="bridge", scope="local",
                   id="0123456789abcdef" * 4),
}


def spec(*networks: str, ports=()) -> ContainerSpec:
    return ContainerSpec(id=CID, name="c", host="h1", command=["true"], ports=list(ports), attachments=[
        Attachment(network=n, ip=f"10.0.{i}.2", mac=f"02:42:0a:00:0{i}:02") for i, n in enumerate(networks)])


def planned(record: LocalContainer, s: ContainerSpec):
    plan.assign_ifnames(record, s, NETWORKS)
    record.gw_ip = "172.18.0.2" if plan.GWBRIDGE_KEY in record.ifnames else ""
    return {i.ifname: (i.bridge, i.peer_netns, i.peer_ifname, i.default_gateway, i.mtu)
            for i in plan.interfaces(s, NETWORKS, record, HOST)}


def test_overlay_only_container_gets_the_gwbridge_for_its_default_route():
    record = LocalContainer(spec=spec("blue"))
    assert planned(record, spec("blue")) == {
        "eth0": ("br0", "vxm-h1-ov4096", "veababababab0", None, 1450),
        "eth1": ("vxm_gwbridge", None, "gwababababab", "172.18.0.1", 1450),
    }


def test_bridge_network_replaces_the_gwbridge_and_carries_the_default_route():
    record = LocalContainer(spec=spec("blue"))
    planned(record, spec("blue"))
    # `network connect lan`: eth0 keeps its name, the gwbridge interface goes
    # and its name is free for the new one.
    assert planned(record, spec("blue", "lan")) == {
        "eth0": ("br0", "vxm-h1-ov4096", "veababababab0", None, 1450),
        "eth1": ("vxb0123456789", None, "vbababababab1", "10.50.0.1", 1500),
    }
    assert planned(LocalContainer(spec=spec()), spec("bridge")) == {
        "eth0": ("vxmesh0", None, "vbababababab0", "172.17.0.1", 1500)}


def test_disconnect_keeps_the_other_names_and_reuses_the_lowest_free_index():
    record = LocalContainer(spec=spec())
    planned(record, spec("blue", "red"))
    assert set(planned(record, spec("red"))) == {"eth1", "eth2"}   # red stays eth1, gwbridge eth2
    assert set(planned(record, spec("red", "blue"))) == {"eth0", "eth1", "eth2"}
    assert record.ifnames == {"red": 1, plan.GWBRIDGE_KEY: 2, "blue": 0}


def test_published_ports_lead_to_the_default_route_network():
    ports = [PortMapping("tcp", 8080, 80), PortMapping("udp", 5353, 53)]
    record = LocalContainer(spec=spec())
    s = spec("blue", ports=ports)
    planned(record, s)
    assert [(r.protocol, r.host_port, r.target_ip, r.target_port, r.bridge)
            for r in plan.port_rules(s, NETWORKS, record, HOST)] == [
        ("tcp", 8080, "172.18.0.2", 80, "vxm_gwbridge"), ("udp", 5353, "172.18.0.2", 53, "vxm_gwbridge")]
    s = spec("blue", "bridge", ports=ports[:1])
    planned(record, s)
    assert [(r.target_ip, r.bridge) for r in plan.port_rules(s, NETWORKS, record, HOST)] == [
        ("10.0.1.2", "vxmesh0")]


@pytest.mark.parametrize("text, expected", [
    ("8080:80", PortMapping("tcp", 8080, 80)),
    ("5353:53/udp", PortMapping("udp", 5353, 53)),
    ("80", PortMapping("tcp", 0, 80)),
    ("443/tcp", PortMapping("tcp", 0, 443)),
])
def test_parse_port(text, expected):
    assert parse_port(text) == expected


@pytest.mark.parametrize("text", ["", "80:", "a:80", "8080:80/sctp", "0:80", "70000:80", "1.2.3.4:80:80"])
def test_parse_port_refuses(text):
    with pytest.raises(CliError, match="invalid -p"):
        parse_port(text)


def test_parse_volume_size_and_signal():
    assert parse_volume("/srv/data:/data") == Mount("/srv/data", "/data", False)
    assert parse_volume("/srv/data:/data:ro") == Mount("/srv/data", "/data", True)
    for bad in ("data:/data", "/a", "/a:/b:rx", "/a:b"):
        with pytest.raises(CliError, match="invalid -v"):
            parse_volume(bad)
    assert [parse_size(t) for t in ("64m", "1g", "512k", "1000", "1.5m")] == [
        64 << 20, 1 << 30, 512 << 10, 1000, int(1.5 * (1 << 20))]
    with pytest.raises(CliError, match="invalid size"):
        parse_size("lots")
    assert [parse_signal(t) for t in ("KILL", "sigterm", "SIGHUP", "9")] == [
        signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, 9]
    for bad in ("NOPE", "999"):
        with pytest.raises(CliError, match="invalid signal"):
            parse_signal(bad)


def test_an_internal_network_gives_no_way_out():
    internal = {**NETWORKS, "priv": Network(name="priv", subnet="10.79.0.0/24", gateway="10.79.0.1", vni=4098,
                                           internal=True),
                "plan": Network(name="plan", subnet="10.51.0.0/24", gateway="10.51.0.1", vni=0, driver="bridge",
                                scope="local", id="fedcba9876543210" * 4, internal=True)}
    s = spec("priv", "plan")
    record = LocalContainer(spec=s)
    plan.assign_ifnames(record, s, internal)
    assert plan.GWBRIDGE_KEY not in record.ifnames          # an overlay alone would get it
    assert [i.default_gateway for i in plan.interfaces(s, internal, record, HOST)] == [None, None]
    # With a network that routes, that one carries the default route.
    s = spec("priv", "blue")
    record = LocalContainer(spec=s)
    plan.assign_ifnames(record, s, internal)
    assert plan.GWBRIDGE_KEY in record.ifnames
