"""The controller's network drivers and their registry (controller/drivers/), without etcd."""
from __future__ import annotations

import pytest

from controller import drivers
from controller.drivers.base import NetworkRequest
from controller.etcd import Compare, Op
from controller.keys import Keys
from proto.errors import FailedPrecondition, InvalidArgument
from proto.records import Attachment, ContainerSpec, Endpoint, Host, Network

keys = Keys("/vx/")
HOST = Host(name="h1", vtep="192.0.2.1", bridge_subnet="172.17.0.0/16")


def test_the_registry_knows_each_driver_and_what_it_allows():
    table = {name: (d.scope, d.creatable, d.attachable, d.builtin) for name, d in drivers.DRIVERS.items()}
    assert table == {
        "overlay": ("global", True, True, ""),
        "bridge": ("local", True, True, "bridge"),
        "host": ("local", False, False, "host"),
        "null": ("local", False, False, "none"),
    }
    assert {name: d.name for name, d in drivers.BUILTIN.items()} == {"bridge": "bridge", "host": "host", "none": "null"}
    assert drivers.DEFAULT_DRIVER == "overlay" and drivers.CREATABLE == ("overlay", "bridge")
    assert drivers.ADDRESS_KINDS == ("ipam", "local-ipam")
    assert drivers.driver_for(Network("lan", "", "", 0, driver="bridge")) is drivers.DRIVERS["bridge"]
    with pytest.raises(InvalidArgument, match="unknown network driver 'macvlan': the drivers are overlay, bridge, host, null"):
        drivers.driver_for("macvlan")


@pytest.mark.parametrize("request_, message", [
    (NetworkRequest("n", "10.1.0.0/24", driver="macvlan"), "unsupported network driver 'macvlan': use one of overlay, bridge"),
    (NetworkRequest("n", "10.1.0.0/24", driver="host"), "unsupported network driver 'host'"),
    (NetworkRequest("n", "10.1.0.0/24", driver="bridge", vni=7), "--vni is for overlay networks; network 'n' uses driver 'bridge'"),
    (NetworkRequest("n", "10.1.0.0/24", driver="bridge", options={"encrypted": "yes"}),
     "network 'n': only overlay networks can be encrypted, not driver 'bridge'"),
    (NetworkRequest("n", "10.1.0.0/24", driver="overlay", options={"mtu": "1400"}),
     "network 'n': unknown option 'mtu'; the options are: encrypted"),
    (NetworkRequest("n", "10.1.0.0/24", driver="overlay", options={"encrypted": "maybe"}), "encrypted='maybe' must be true or false"),
])
def test_create_requests_are_refused_by_what_the_drivers_say(request_, message):
    with pytest.raises(InvalidArgument) as err:
        drivers.for_create(request_)
    assert message in str(err.value)


def test_an_option_only_another_driver_takes_may_be_given_false():
    driver, flags = drivers.for_create(NetworkRequest("n", "10.1.0.0/24", driver="bridge", options={"encrypted": "false"}))
    assert (driver.name, flags) == ("bridge", {"encrypted": False})
    assert drivers.for_create(NetworkRequest("n", "10.1.0.0/24", driver="overlay", options={"encrypted": ""}))[1] == {
        "encrypted": True}


async def test_overlay_checks_its_vni_and_refuses_encryption():
    overlay = drivers.DRIVERS["overlay"]
    with pytest.raises(InvalidArgument, match="invalid VNI -5"):
        await overlay.check_create(NetworkRequest("n", "10.1.0.0/24", vni=-5), {})
    with pytest.raises(FailedPrecondition, match="cannot create encrypted network 'n'"):
        await overlay.check_create(NetworkRequest("n", "10.1.0.0/24"), {"encrypted": True})
    await overlay.check_create(NetworkRequest("n", "10.1.0.0/24", vni=42), {"encrypted": False})


def test_where_an_attachment_takes_its_address_and_what_it_writes():
    overlay, bridge = drivers.DRIVERS["overlay"], drivers.DRIVERS["bridge"]
    blue = Network("blue", "10.77.0.0/24", "10.77.0.1", 4096, driver="overlay")
    lan = Network("lan", "10.50.0.0/24", "10.50.0.1", 0, driver="bridge")
    default = Network("bridge", "", "", 0, driver="bridge", builtin=True)
    spec = ContainerSpec(id="ab" * 32, name="c", host="h1")
    attachment = Attachment("blue", "10.77.0.2", "02:42:0a:4d:00:02", aliases=["web", "db"])

    assert overlay.reservations(keys, "blue", "h1") == "/vx/ipam/blue/"
    assert overlay.subnet_for(blue, HOST) == ("10.77.0.0/24", "10.77.0.1")
    assert overlay.rows(keys, blue, spec, HOST, attachment) == [("/vx/endpoints/blue/c", Endpoint(
        network="blue", container="c", host="h1", vtep="192.0.2.1", ip="10.77.0.2", mac="02:42:0a:4d:00:02",
        container_id="ab" * 32, aliases="web db"))]  # for other hosts' embedded DNS
    assert overlay.row_keys(keys, "blue", "c") == ["/vx/endpoints/blue/c"]

    assert bridge.reservations(keys, "lan", "h1") == "/vx/local-ipam/lan/h1/"
    assert bridge.subnet_for(lan, HOST) == ("10.50.0.0/24", "10.50.0.1")
    assert bridge.subnet_for(default, HOST) == ("172.17.0.0/16", "172.17.0.1")  # the host's own
    with pytest.raises(FailedPrecondition, match="host 'h2' has no default bridge subnet"):
        bridge.subnet_for(default, Host(name="h2", vtep="192.0.2.2"))
    assert bridge.rows(keys, lan, spec, HOST, attachment) == [] and bridge.row_keys(keys, "lan", "c") == []

    for mode in ("host", "null"):
        with pytest.raises(InvalidArgument, match="is a mode, not a network to attach: use --network"):
            drivers.DRIVERS[mode].check_attachable(Network(mode, "", "", 0, driver=mode))


def test_what_removing_a_network_guards_and_frees():
    blue = Network("blue", "10.77.0.0/24", "10.77.0.1", 4096, driver="overlay")
    removal = drivers.DRIVERS["overlay"].removal(keys, blue, 7)
    # Stopped containers' endpoints (read at 7) go with the network; none may appear after.
    assert removal.compares == [Compare.prefix_unchanged_since("/vx/endpoints/blue/", 7)]
    assert removal.ops == [Op.delete("/vx/vnis/4096"), Op.delete_prefix("/vx/ipam/blue/")]
    removal = drivers.DRIVERS["bridge"].removal(keys, Network("lan", "10.50.0.0/24", "10.50.0.1", 0, driver="bridge"), 7)
    assert removal.compares == [Compare.prefix_unchanged_since("/vx/containers/", 7)]
    assert removal.ops == [Op.delete_prefix("/vx/local-ipam/lan/")]
