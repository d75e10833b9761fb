"""The kernel code tells an address's family from the address and refuses one it cannot program (pure)."""
from __future__ import annotations

import ipaddress
import socket

import pytest

from agent.kernel import families, firewall
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.overlay import OverlaySpec
from agent.kernel.veth import Interface
from proto.errors import InvalidArgument


def test_the_family_comes_from_the_address():
    assert families.family_of(ipaddress.ip_address("10.1.2.3")).af == socket.AF_INET
    assert families.family_of("10.1.2.3").nft == "ip"
    assert families.family_of(ipaddress.ip_network("10.0.0.0/8")).any_network == "0.0.0.0/0"
    assert families.nft_table_family(families.overlay()) == firewall.FAMILY == "ip"
    ipv6 = families.Family(6, socket.AF_INET6, "ip6", "::/0", 128)
    assert families.nft_table_family([families.IPV4, ipv6]) == "inet"


def test_a_family_the_data_plane_cannot_program_is_refused_by_name():
    with pytest.raises(InvalidArgument, match="fd00::1 is IPv6; the data plane programs IPv4 only"):
        families.family_of(ipaddress.ip_address("fd00::1"))
    # Where proto.addresses already limits the family (OVERLAY_FAMILIES), its rule speaks.
    with pytest.raises(InvalidArgument, match="only IPv4 addresses are supported"):
        families.packed("fd00::1", "neighbour address")


def test_packed_is_strict_and_names_the_value():
    assert families.packed("10.1.2.3", "x") == bytes([10, 1, 2, 3])
    for bad in ("10.1.2.300", "10.1.2", "010.1.2.3", ""):
        with pytest.raises(InvalidArgument, match=repr(bad)):
            families.packed(bad, "neighbour address")


def test_interface_addresses():
    assert str(families.interface("10.0.0.2/24", "address")) == "10.0.0.2/24"
    for bad, why in (("10.0.0.2", "ADDRESS/PREFIXLEN"), ("10.0.0.2/33", "prefix length"),
                     ("10.0.0.2/x", "ADDRESS/PREFIXLEN"), ("fd00::2/64", "only IPv4")):
        with pytest.raises(InvalidArgument, match=why):
            families.interface(bad, "address")


def test_kernel_specs_check_their_addresses_through_one_rule():
    with pytest.raises(ValueError, match="vtep_ip 'x'"):
        OverlaySpec(vni=4096, gateway="10.0.0.1", prefixlen=24, vtep_ip="x", mtu=1450)
    with pytest.raises(ValueError, match="prefix length"):
        OverlaySpec(vni=4096, gateway="10.0.0.1", prefixlen=33, vtep_ip="10.9.0.1", mtu=1450)
    with pytest.raises(ValueError, match="default_gateway"):
        Interface(container_netns="n", ifname="eth0", peer_netns=None, peer_ifname="p", bridge="br0",
                  address="10.0.0.2/24", mac=None, mtu=1500, default_gateway="gw")
    with pytest.raises(ValueError, match="subnet 'fd00::/64'"):
        LocalBridgeSpec(name="vxb1", subnet="fd00::/64", gateway="fd00::1")
    assert LocalBridgeSpec(name="vxb1", subnet="10.5.0.0/16", gateway="10.5.0.1").prefixlen == 16
