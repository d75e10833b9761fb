"""Unit tests for the pure address, VNI and name rules (proto/addresses.py, proto/validate.py, the overlay driver's VNIs)."""
import re
from ipaddress import IPv4Network

import grpc
import pytest

from proto import addresses, validate
from proto.errors import InvalidArgument, ResourceExhausted
from controller.drivers.overlay import next_free_vni
from controller.keys import Keys


# ---- subnets ----------------------------------------------------------------

def test_parse_subnet_accepts_a_plain_ipv4_cidr():
    assert addresses.parse_subnet("10.77.0.0/24") == IPv4Network("10.77.0.0/24")


@pytest.mark.parametrize(
    "cidr, fragment",
    [
        ("10.0.0.0/33", "invalid subnet '10.0.0.0/33'"),
        ("banana", "invalid subnet 'banana'"),
        ("10.0.0.1/24", "host bits are set (the network is 10.0.0.0/24)"),
        ("fd00::/64", "only IPv4"),
        ("10.0.0.0/7", "between /8 and /30"),
        ("10.0.0.0/31", "between /8 and /30"),
        ("10.0.0.0", "between /8 and /30"),
    ],
)
def test_parse_subnet_rejects_with_a_message_naming_the_problem(cidr, fragment):
    with pytest.raises(InvalidArgument) as err:
        addresses.parse_subnet(cidr)
    assert fragment in str(err.value)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


# ---- gateway ----------------------------------------------------------------

def test_default_gateway_is_the_first_host_address():
    assert addresses.default_gateway(IPv4Network("10.77.4.0/22")) == "10.77.4.1"


def test_check_gateway_accepts_any_host_address_and_canonicalises():
    net = IPv4Network("10.77.0.0/24")
    assert addresses.check_gateway(net, "10.77.0.254") == "10.77.0.254"


@pytest.mark.parametrize(
    "gateway, fragment",
    [
        ("10.78.0.1", "outside the subnet 10.77.0.0/24"),
        ("10.77.0.0", "network address"),
        ("10.77.0.255", "broadcast address"),
        ("10.77.0.300", "invalid gateway '10.77.0.300'"),
    ],
)
def test_check_gateway_rejects(gateway, fragment):
    with pytest.raises(InvalidArgument, match="invalid gateway") as err:
        addresses.check_gateway(IPv4Network("10.77.0.0/24"), gateway)
    assert fragment in str(err.value)


# ---- overlap ----------------------------------------------------------------

def test_overlaps_names_the_overlapping_network():
    others = {"red": "10.1.0.0/16", "green": IPv4Network("10.77.0.0/16")}
    assert addresses.overlaps(IPv4Network("10.77.3.0/24"), others) == "green"
    # the new subnet may also contain an existing one
    assert addresses.overlaps(IPv4Network("10.0.0.0/8"), {"red": "10.1.0.0/16"}) == "red"


def test_overlaps_returns_none_for_disjoint_subnets():
    others = {"red": "10.1.0.0/16", "green": "10.77.0.0/24"}
    assert addresses.overlaps(IPv4Network("10.77.1.0/24"), others) is None
    assert addresses.overlaps(IPv4Network("10.77.1.0/24"), {}) is None


# ---- addresses --------------------------------------------------------------

def test_next_free_ip_skips_network_and_gateway():
    net = IPv4Network("10.77.0.0/24")
    assert addresses.next_free_ip(net, "10.77.0.1", set()) == "10.77.0.2"


def test_next_free_ip_skips_taken_and_a_non_default_gateway():
    net = IPv4Network("10.77.0.0/24")
    taken = {"10.77.0.1", "10.77.0.2", "10.77.0.4"}
    assert addresses.next_free_ip(net, "10.77.0.3", taken) == "10.77.0.5"


def test_next_free_ip_starts_at_the_hint_and_wraps_around():
    net = IPv4Network("10.77.0.0/29")  # hosts .1-.6, gateway .1
    assert addresses.next_free_ip(net, "10.77.0.1", set(), hint="10.77.0.5") == "10.77.0.5"
    taken = {"10.77.0.5", "10.77.0.6"}
    assert addresses.next_free_ip(net, "10.77.0.1", taken, hint="10.77.0.5") == "10.77.0.2"
    # a hint on the broadcast address is ignored rather than handed out
    assert addresses.next_free_ip(net, "10.77.0.1", set(), hint="10.77.0.7") == "10.77.0.2"


def test_next_free_ip_never_returns_the_broadcast_address():
    net = IPv4Network("10.77.0.0/29")
    taken = {"10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.5"}
    assert addresses.next_free_ip(net, "10.77.0.1", taken) == "10.77.0.6"
    with pytest.raises(addresses.SubnetFull):
        addresses.next_free_ip(net, "10.77.0.1", taken | {"10.77.0.6"})


def test_subnet_full_names_the_network_and_subnet():
    net = IPv4Network("10.77.0.0/30")  # one usable address besides the gateway
    assert addresses.next_free_ip(net, "10.77.0.1", set(), network="blue") == "10.77.0.2"
    with pytest.raises(ResourceExhausted) as err:
        addresses.next_free_ip(net, "10.77.0.1", {"10.77.0.2"}, network="blue")
    assert str(err.value) == "network 'blue' has no free address in 10.77.0.0/30"
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_mac_for_ip_follows_dockers_scheme():
    assert addresses.mac_for_ip("10.77.0.2") == "02:42:0a:4d:00:02"
    assert addresses.mac_for_ip("192.168.255.254") == "02:42:c0:a8:ff:fe"


# ---- VNIs -------------------------------------------------------------------

def test_next_free_vni_starts_at_4096_and_skips_taken():
    assert next_free_vni(set()) == 4096
    assert next_free_vni({4096, 4097, 4099, 7}) == 4098


@pytest.mark.parametrize("vni", [1, 42, 16777215])
def test_check_vni_accepts_the_24_bit_range(vni):
    assert validate.vni(vni) == vni


@pytest.mark.parametrize("vni", [0, -1, 16777216, True, "5"])
def test_check_vni_rejects_outside_the_range(vni):
    with pytest.raises(InvalidArgument, match="between 1 and 16777215"):
        validate.vni(vni)


# ---- names ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["blue", "a", "web-1.prod_x", "9lives", "x" * 63])
def test_validate_name_accepts(name):
    assert validate.name("network", name) == name


@pytest.mark.parametrize("name", ["", "-blue", ".x", "a/b", "has space", "x" * 64, "blü"])
def test_validate_name_rejects_naming_the_name_and_the_rule(name):
    with pytest.raises(InvalidArgument) as err:
        validate.name("container", name)
    message = str(err.value)
    assert message.startswith(f"invalid container name {name!r}")
    assert validate.NAME_PATTERN in message


# ---- key layout (pure, so it lives with the other pure rules) ----------------

def test_keys_round_trip_through_parse():
    keys = Keys("/vx")
    assert keys.prefix == "/vx/"
    cases = {
        keys.network("blue"): ("network", ("blue",)),
        keys.vni(4096): ("vni", ("4096",)),
        keys.ipam("blue", "10.77.0.2"): ("ipam", ("blue", "10.77.0.2")),
        keys.host("h1"): ("host", ("h1",)),
        keys.alive("h1"): ("alive", ("h1",)),
        keys.container("c1"): ("container", ("c1",)),
        keys.status("c1"): ("status", ("c1",)),
        keys.endpoint("blue", "c1"): ("endpoint", ("blue", "c1")),
    }
    for key, parsed in cases.items():
        assert keys.parse(key) == parsed
    assert keys.endpoint("blue", "c1") == "/vx/endpoints/blue/c1"
    assert keys.endpoints("blue") == "/vx/endpoints/blue/"


@pytest.mark.parametrize(
    "key", ["/other/networks/blue", "/vx/bogus/x", "/vx/networks/", "/vx/endpoints/blue", "/vx/ipam/a/b/c"]
)
def test_keys_parse_rejects_foreign_or_malformed_keys(key):
    with pytest.raises(ValueError, match=re.escape(repr(key))):
        Keys("/vx/").parse(key)
