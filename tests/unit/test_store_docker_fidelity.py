"""Store behaviours a Docker user relies on: published ports follow a container's
life (chosen ones never collide with asked ones, a stop gives them back, a start
takes them again), and a network goes while only stopped containers hold it."""
from __future__ import annotations

import json

import pytest

from controller.run_options import RunOptions
from proto.errors import FailedPrecondition, InvalidArgument
from proto.records import ContainerStatus, Host, PortMapping

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def setup(store) -> None:
    await store.register_host(Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001"))
    await store.create_network("blue", "10.77.0.0/24")


def ports(*mappings: tuple[int, int]) -> RunOptions:
    return RunOptions(ports=tuple(PortMapping("tcp", host, container) for host, container in mappings))


async def exited(store, name: str) -> None:
    spec, _ = await store.get_container(name)
    assert await store.put_status("h1", ContainerStatus(name=name, id=spec.id, state="exited",
                                                        generation=spec.generation))


async def held(store, prefix: str, etcd) -> dict[str, str]:
    kvs, _ = await etcd.get_prefix(f"{prefix}ports/h1/")
    return {kv.key.rsplit("/", 1)[1]: json.loads(kv.value)["container"] for kv in kvs}


async def test_a_chosen_port_never_takes_one_asked_for_later_in_the_same_run(store):
    await setup(store)
    # -p 80 -p 32768:8080: 32768 is the first free ephemeral port, but it is asked for.
    spec = await store.create_container("c1", "h1", [], {}, "", ["blue"], ports((0, 80), (32768, 8080)))
    assert [(p.host_port, p.container_port, p.dynamic) for p in spec.ports] == [(32769, 80, True),
                                                                                 (32768, 8080, False)]


async def test_a_stopped_container_gives_its_ports_back_and_a_start_takes_them_again(store, prefix, etcd):
    await setup(store)
    await store.create_container("c1", "h1", [], {}, "", ["blue"], ports((8080, 80), (0, 81)))
    assert await held(store, prefix, etcd) == {"8080-tcp": "c1", "32768-tcp": "c1"}
    await store.set_desired("c1", "stopped")
    await exited(store, "c1")
    assert await held(store, prefix, etcd) == {}
    # Another container takes the chosen port meanwhile: c1's start chooses another.
    await store.create_container("c2", "h1", [], {}, "", ["blue"], ports((32768, 80)))
    spec = await store.set_desired("c1", "running", bump_generation=True)
    assert [(p.host_port, p.dynamic) for p in spec.ports] == [(8080, False), (32769, True)]
    assert await held(store, prefix, etcd) == {"8080-tcp": "c1", "32769-tcp": "c1", "32768-tcp": "c2"}
    # A late report from before the start frees nothing.
    assert await store.put_status("h1", ContainerStatus(name="c1", id=spec.id, state="exited", generation=0))
    assert "8080-tcp" in await held(store, prefix, etcd)


async def test_a_start_is_refused_when_a_port_it_asked_for_was_taken(store, prefix, etcd):
    await setup(store)
    await store.create_container("c1", "h1", [], {}, "", ["blue"], ports((8080, 80)))
    await store.set_desired("c1", "stopped")
    await exited(store, "c1")
    await store.create_container("c2", "h1", [], {}, "", ["blue"], ports((8080, 80)))
    with pytest.raises(FailedPrecondition, match="cannot start container 'c1': host port 8080/tcp on host 'h1' "
                                                 "is already published by container 'c2'"):
        await store.set_desired("c1", "running", bump_generation=True)
    assert (await store.get_container("c1"))[0].desired == "stopped"


@pytest.mark.parametrize("driver", ["overlay", "bridge"])
async def test_a_network_goes_while_only_stopped_containers_are_attached(store, prefix, etcd, driver):
    await store.register_host(Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001"))
    await store.create_network("red", "10.78.0.0/24", driver=driver)
    await store.create_container("up", "h1", [], {}, "", ["red"])
    await store.create_container("down", "h1", [], {}, "", ["red"])
    await store.set_desired("down", "stopped")
    await exited(store, "down")
    with pytest.raises(FailedPrecondition, match="network 'red' has active endpoints: up$"):
        await store.remove_network("red")
    await store.set_desired("up", "stopped")
    await exited(store, "up")
    await store.remove_network("red")
    assert [n.name for n in await store.list_networks()] == []
    for name in ("up", "down"):
        assert (await store.get_container(name))[0].attachments == []
    assert (await etcd.get_prefix(f"{prefix}endpoints/"))[0] == []
    # The subnet is free for a new network, and the containers can be removed.
    await store.create_network("red", "10.78.0.0/24", driver=driver)
    await store.delete_container("down")


async def test_a_network_without_a_subnet_takes_one_from_the_pools(etcd, prefix):
    from controller.store import Store
    store = Store(etcd, prefix, address_pools=("10.200.0.0/16:24",))
    await store.register_host(Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001"))
    await store.create_network("taken", "10.200.0.0/24")
    auto = await store.create_network("auto", "", labels={"env": "dev"}, attachable=True)
    assert (auto.subnet, auto.gateway, auto.labels, auto.attachable) == ("10.200.1.0/24", "10.200.1.1",
                                                                         {"env": "dev"}, True)
    assert (await store.create_network("lan", "", driver="bridge")).subnet == "10.200.2.0/24"
    with pytest.raises(InvalidArgument, match="--gateway and --ip-range need --subnet"):
        await store.create_network("bad", "", ip_range="10.200.3.0/25")


async def test_ip_range_static_addresses_and_internal(store):
    await store.register_host(Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001", bridge_subnet="172.17.0.0/16"))
    net = await store.create_network("blue", "10.77.0.0/24", ip_range="10.77.0.128/25", internal=True)
    assert (net.ip_range, net.internal) == ("10.77.0.128/25", True)
    dynamic = await store.create_container("c1", "h1", [], {}, "", ["blue"])
    assert dynamic.attachments[0].ip == "10.77.0.129"
    static = await store.create_container("c2", "h1", [], {}, "", ["blue"], RunOptions(ip="10.77.0.10"))
    assert static.attachments[0].ip == "10.77.0.10"
    with pytest.raises(FailedPrecondition, match="address 10.77.0.10 is already in use on network 'blue' "
                                                 "by container 'c2'"):
        await store.create_container("c3", "h1", [], {}, "", ["blue"], RunOptions(ip="10.77.0.10"))
    with pytest.raises(InvalidArgument, match="outside the subnet"):
        await store.create_container("c3", "h1", [], {}, "", ["blue"], RunOptions(ip="10.78.0.10"))
    await store.create_network("red", "10.78.0.0/24")
    connected = await store.connect("c1", "red", ("db",), "10.78.0.20")
    assert [(a.network, a.ip, a.aliases) for a in connected.attachments][1] == ("red", "10.78.0.20", ["db"])
    await store.ensure_builtin_networks()
    with pytest.raises(InvalidArgument, match="a chosen address needs a user network"):
        await store.create_container("c4", "h1", [], {}, "", ["bridge"], RunOptions(ip="172.17.0.9"))


async def test_run_detached_with_rm_goes_when_it_exits(store, prefix, etcd):
    await setup(store)
    await store.create_container("once", "h1", [], {}, "", ["blue"], RunOptions(remove_on_exit=True))
    await store.create_container("kept", "h1", [], {}, "", ["blue"])
    running = (await store.get_container("once"))[0]
    assert running.auto_remove
    await exited(store, "kept")
    await exited(store, "once")
    assert [spec.name for spec, _ in await store.list_containers()] == ["kept"]
    # Its endpoint goes with it, as with rm; the address waits for its host's confirmation.
    assert [kv.key.rsplit("/", 1)[1] for kv in (await etcd.get_prefix(f"{prefix}endpoints/"))[0]] == ["kept"]


async def test_endpoints_say_whether_their_container_runs(store, prefix, etcd):
    """The other hosts' embedded DNS answers a container's names only while it runs:
    its endpoint rows follow its host's reports, a start's and a stop's alike."""
    from proto.records import Endpoint

    async def stopped(name: str, network: str = "blue") -> bool:
        kv = await etcd.get(f"{prefix}endpoints/{network}/{name}")
        return Endpoint.from_json(kv.value).stopped

    await setup(store)
    await store.create_network("red", "10.78.0.0/24")
    spec = await store.create_container("c1", "h1", [], {}, "", ["blue"])
    assert await stopped("c1") is False        # running as soon as it exists: a run's start
    await store.put_status("h1", ContainerStatus(name="c1", id=spec.id, state="running"))
    assert await stopped("c1") is False
    await store.set_desired("c1", "stopped")
    await exited(store, "c1")
    assert await stopped("c1") is True
    # Connected while stopped: its new endpoint is stopped too.
    await store.connect("c1", "red")
    assert await stopped("c1", "red") is True
    spec = await store.set_desired("c1", "running", bump_generation=True)
    # A late report from before the start changes nothing.
    await store.put_status("h1", ContainerStatus(name="c1", id=spec.id, state="exited", generation=0))
    assert await stopped("c1") is True
    await store.put_status("h1", ContainerStatus(name="c1", id=spec.id, state="running",
                                                 generation=spec.generation))
    assert (await stopped("c1"), await stopped("c1", "red")) == (False, False)
