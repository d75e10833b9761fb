"""Where addresses come from when the user does not say (default address pools,
--ip-range) and what a chosen one (--ip) must be; the CLI's network filters."""
from __future__ import annotations

import pytest

from cli.listing import network_filter
from cli.options import CliError, parse_labels
from proto.addresses import check_static_ip, parse_ip_range, parse_pool, parse_subnet, subnet_from_pools
from proto.errors import InvalidArgument, ResourceExhausted
from proto.records import Network

NET = parse_subnet("10.77.0.0/24")


def test_a_pool_gives_the_first_subnet_nothing_overlaps():
    taken = {"the default bridge of host h1": "172.17.0.0/16", "the gwbridge of host h1": "172.18.0.0/16"}
    assert str(subnet_from_pools(["172.17.0.0/16:16", "172.16.0.0/12:16"], taken)) == "172.16.0.0/16"
    taken["network 'a'"] = "172.16.0.0/16"
    assert str(subnet_from_pools(["172.16.0.0/12:16"], taken)) == "172.19.0.0/16"
    assert str(subnet_from_pools(["10.200.0.0/16:24"], {"network 'x'": "10.200.0.0/23"})) == "10.200.2.0/24"
    with pytest.raises(ResourceExhausted, match="no free subnet left: give --subnet"):
        subnet_from_pools(["10.200.0.0/24:24"], {"network 'x'": "10.200.0.0/24"})


@pytest.mark.parametrize("text", ["10.0.0.0/8", "10.0.0.0/8:4", "10.0.0.0/8:31", "nope:24", "10.0.0.1/8:16"])
def test_a_bad_pool_is_refused(text):
    with pytest.raises(InvalidArgument):
        parse_pool(text)


def test_ip_range_and_static_addresses():
    assert str(parse_ip_range("10.77.0.128/25", NET)) == "10.77.0.128/25"
    with pytest.raises(InvalidArgument, match="is not inside the subnet 10.77.0.0/24"):
        parse_ip_range("10.78.0.0/25", NET)
    assert check_static_ip("10.77.0.50", NET, "10.77.0.1", "blue") == "10.77.0.50"
    for bad, says in (("10.78.0.5", "outside the subnet"), ("10.77.0.1", "gateway"), ("10.77.0.255", "broadcast"),
                      ("nope", "invalid address")):
        with pytest.raises(InvalidArgument, match=says):
            check_static_ip(bad, NET, "10.77.0.1", "blue")


def test_network_filters_as_docker():
    nets = [Network("blue", "10.77.0.0/24", "10.77.0.1", 4096, driver="overlay", id="aa11", scope="global",
                    labels={"env": "prod", "team": ""}),
            Network("lan", "10.50.0.0/24", "10.50.0.1", 0, driver="bridge", id="bb22", scope="local")]

    def names(*filters):
        return [n.name for n in nets if network_filter(list(filters))(n)]
    assert names() == ["blue", "lan"]
    assert names("driver=bridge") == ["lan"]
    assert names("name=lu") == ["blue"]
    assert names("id=bb") == ["lan"]
    assert names("label=env") == ["blue"] and names("label=env=dev") == []
    assert names("label=team") == ["blue"]
    assert names("driver=bridge", "driver=overlay") == ["blue", "lan"]     # one key: alternatives
    assert names("driver=bridge", "name=blue") == []                      # keys: all must match
    assert names("scope=swarm") == ["blue"]
    with pytest.raises(CliError, match="invalid filter 'colour=red'"):
        network_filter(["colour=red"])
    assert parse_labels(["a=1", "b"]) == {"a": "1", "b": ""}
