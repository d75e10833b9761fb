"""The input rules of proto/validate.py and proto/addresses.py that keep unsafe
names and subnets out: container hostnames, address space that is not
unicast, the hosts' own subnets; and the checks that apply them to an
agent's config and hello."""
from __future__ import annotations

from ipaddress import ip_network

import pytest

from controller.agent_link import host_problem
from proto import validate
from proto.addresses import RESERVED_SUBNETS, check_unicast, subnet_clash
from proto.config_file import ipv4_subnet
from proto.errors import InvalidArgument
from proto.records import Host


@pytest.mark.parametrize("good", ["web", "Web-01", "a", "db.internal", "a.b-c.d9", "x" * 63, "1.2.3"])
def test_container_hostnames_that_are_rfc_1123(good):
    assert validate.hostname(good) == good


@pytest.mark.parametrize("bad", ["a b", "a\x00b", "a\nb", "web\n", "a/b", "../etc", "-a", "a-", "a..b", ".a",
                                 "a.", "", "a_b", "é", "a\tb", "a:b"])
def test_container_hostnames_that_are_not(bad):
    with pytest.raises(InvalidArgument) as err:
        validate.hostname(bad)
    assert str(err.value).startswith("invalid hostname ") and "RFC 1123 labels" in str(err.value)
    assert "\n" not in str(err.value)      # one line, whatever the input held


def test_a_hostname_longer_than_63_names_its_length():
    with pytest.raises(InvalidArgument, match=r"hostname is 64 characters \(at most 63\)"):
        validate.hostname("a." * 32)


@pytest.mark.parametrize("subnet, reserved", [
    ("0.0.0.0/8", "0.0.0.0/8"), ("0.1.2.0/24", "0.0.0.0/8"), ("127.0.0.0/8", "127.0.0.0/8"),
    ("127.5.0.0/16", "127.0.0.0/8"), ("126.0.0.0/7", "127.0.0.0/8"), ("169.254.0.0/16", "169.254.0.0/16"),
    ("224.0.0.0/24", "224.0.0.0/4"), ("239.255.255.0/24", "224.0.0.0/4"), ("240.0.0.0/8", "240.0.0.0/4"),
    ("255.255.255.0/24", "240.0.0.0/4"), ("fe80::/64", "fe80::/10"), ("ff02::/64", "ff00::/8"),
    ("::/64", "::/127"),
])
def test_space_that_is_not_unicast_is_refused_naming_the_range(subnet, reserved):
    with pytest.raises(InvalidArgument) as err:
        check_unicast(ip_network(subnet))
    assert str(err.value).startswith(f"subnet {subnet} overlaps {reserved}, ")
    assert str(err.value).endswith(": no network may use it")


@pytest.mark.parametrize("subnet", ["1.0.0.0/8", "10.0.0.0/8", "126.0.0.0/8", "128.0.0.0/8", "169.253.0.0/16",
                                    "169.255.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "223.255.255.0/24",
                                    "100.64.0.0/10", "fd00::/64", "2001:db8::/64"])
def test_unicast_space_passes(subnet):
    assert check_unicast(ip_network(subnet)) == ip_network(subnet)


def test_every_reserved_range_is_of_its_family():
    for family, ranges in RESERVED_SUBNETS.items():
        assert all(net.version == family for net, _ in ranges)


def test_a_clash_names_what_holds_the_subnet_and_the_subnet():
    h1 = Host(name="h1", vtep="10.231.0.11", underlay_subnet="10.231.0.0/24", gwbridge_subnet="172.18.0.0/16",
              bridge_subnet="172.17.0.0/16")
    assert h1.own_subnets() == {"the underlay of host h1": "10.231.0.0/24",
                                "the gwbridge of host h1": "172.18.0.0/16",
                                "the default bridge of host h1": "172.17.0.0/16"}
    assert Host(name="old", vtep="10.0.0.1").own_subnets() == {}     # an agent that reports none
    taken = {**h1.own_subnets(), "network 'blue'": "10.77.0.0/24"}
    assert subnet_clash(ip_network("10.231.0.0/24"), taken) == (
        "subnet 10.231.0.0/24 overlaps the underlay of host h1 (10.231.0.0/24)")
    assert subnet_clash(ip_network("172.16.0.0/12"), taken) == (
        "subnet 172.16.0.0/12 overlaps the default bridge of host h1 (172.17.0.0/16)")
    assert subnet_clash(ip_network("10.77.0.128/25"), taken) == (
        "subnet 10.77.0.128/25 overlaps network 'blue' (10.77.0.0/24)")
    assert subnet_clash(ip_network("10.78.0.0/24"), taken) is None


def test_an_agent_config_keeps_its_own_subnets_unicast():
    assert ipv4_subnet("172.18.0.0/16") is None
    assert ipv4_subnet("127.0.0.0/16") == "overlaps 127.0.0.0/8, loopback: no network may use it"
    assert ipv4_subnet("224.0.0.0/16").startswith("overlaps 224.0.0.0/4, multicast")


def test_a_hello_with_subnets_that_are_not_subnets_is_refused():
    good = Host(name="h1", vtep="10.231.0.11", mtu=1500, underlay_subnet="10.231.0.0/24",
                gwbridge_subnet="172.18.0.0/16", bridge_subnet="172.17.0.0/16")
    assert host_problem(good) is None
    for field, value in (("underlay_subnet", "10.231.0.11/24"), ("gwbridge_subnet", "nowhere"),
                         ("bridge_subnet", "fd00::/64")):
        bad = Host(**{**good.to_dict(), field: value})
        assert host_problem(bad) == f"{field.replace('_', ' ')} {value!r} of host 'h1' is not an IPv4 network"
    for name in ("h\x00", "h/1", "h 1", "h\n1"):
        assert host_problem(Host(**{**good.to_dict(), "name": name})).startswith("invalid host name ")
