"""Engines' endpoints in the store: one IPAM for every engine, refusals before any write."""
from __future__ import annotations

import dataclasses

import pytest

from controller.store import Store
from proto.errors import FailedPrecondition, InvalidArgument, NotFound
from proto.records import Host, PortMapping
from tests.helpers.etcd import snapshot

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def add_hosts(store: Store) -> None:
    await store.register_host(Host(name="h1", vtep="192.0.2.1", api="192.0.2.1:7001"))
    await store.register_host(Host(name="h2", vtep="192.0.2.2", api="192.0.2.2:7001"))


async def test_engine_endpoints_share_the_ipam_and_table_with_native_containers(store, etcd, prefix):
    await add_hosts(store)
    await store.create_network("blue", "10.77.0.0/24")
    native = await store.create_container("c1", "h1", [], {}, "", ["blue"])
    docker = await store.engines.attach("h1", "docker", "blue")
    cni = await store.engines.attach("h2", "cni", "blue", engine_id="abc123", sandbox="/run/netns/x")
    pinned = await store.engines.attach("h2", "cni", "blue", ip="10.77.0.40", mac="02:00:00:00:00:40")
    ips = [native.attachments[0].ip, docker.attachments[0].ip, cni.attachments[0].ip, pinned.attachments[0].ip]
    assert ips == ["10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.40"]
    assert pinned.attachments[0].mac == "02:00:00:00:00:40"
    assert docker.attachments[0].mac == "02:42:0a:4d:00:03"
    assert (cni.engine, cni.engine_id, cni.sandbox, cni.host) == ("cni", "abc123", "/run/netns/x", "h2")
    # every host of the network sees the engine's endpoint, marked with its engine
    endpoints = {e.ip: e for e in await store.network_endpoints("blue")}
    assert endpoints["10.77.0.3"].engine == "docker" and endpoints["10.77.0.3"].vtep == "192.0.2.1"
    assert endpoints["10.77.0.2"].engine == ""
    # a native run after them takes the next free address, not theirs
    assert (await store.create_container("c2", "h1", [], {}, "", ["blue"])).attachments[0].ip == "10.77.0.5"
    assert {s.name for s in await store.engines.list_on("h2")} == {cni.name, pinned.name}

    joined = await store.engines.join("h1", docker.name, "f" * 64, "/var/run/docker/netns/1234", "eth0")
    assert (joined.engine_id, joined.sandbox, joined.interface) == ("f" * 64, "/var/run/docker/netns/1234", "eth0")
    left = await store.engines.join("h1", docker.name, "", "")
    assert (left.engine_id, left.sandbox, left.interface) == ("f" * 64, "", "")

    # removed like a container: rows at once, the address once the host confirms
    await store.delete_container(docker.name)
    assert "10.77.0.3" not in {e.ip for e in await store.network_endpoints("blue")}
    assert await store.release_container(docker.name, "h1") is True
    assert await etcd.get(f"{prefix}ipam/blue/10.77.0.3") is None


async def test_bad_engine_requests_are_refused_before_anything_is_written(store, etcd, prefix):
    await add_hosts(store)
    await store.create_network("blue", "10.77.0.0/24")
    taken = await store.engines.attach("h1", "docker", "blue")
    native = await store.create_container("c1", "h1", [], {}, "", ["blue"])
    before = await snapshot(etcd, prefix)
    refusals = [
        (dict(engine="rkt"), InvalidArgument, "unknown container engine 'rkt'"),
        (dict(network="nope"), NotFound, "network 'nope' not found"),
        (dict(ip="10.77.0.1"), InvalidArgument, "network, broadcast or gateway address of network 'blue'"),
        (dict(ip="10.77.1.5"), InvalidArgument, "outside the subnet 10.77.0.0/24 of network 'blue'"),
        (dict(ip="10.77.0.255"), InvalidArgument, "network, broadcast or gateway address"),
        (dict(ip="banana"), InvalidArgument, "banana"),
        (dict(ip=taken.attachments[0].ip), FailedPrecondition, f"already in use on network 'blue' by container {taken.name!r}"),
        (dict(mac="01:00:5e:00:00:01"), InvalidArgument, "must be a unicast address"),
        (dict(mac="02:42"), InvalidArgument, "invalid MAC address"),
        (dict(engine_id="../etc"), InvalidArgument, "invalid engine container id"),
        (dict(sandbox="relative/path"), InvalidArgument, "must be an absolute path"),
        (dict(host="h9"), NotFound, "host 'h9' not found"),
    ]
    for change, error, message in refusals:
        request = dict(host="h1", engine="docker", network="blue") | change
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            await store.engines.attach(**request)
    with pytest.raises(FailedPrecondition, match="vxmesh's own"):
        await store.engines.join("h1", native.name, "", "/x", "eth0")
    with pytest.raises(FailedPrecondition, match="belongs to host 'h1', not 'h2'"):
        await store.engines.join("h2", taken.name, "", "/x", "eth0")
    with pytest.raises(InvalidArgument, match="interface"):
        await store.engines.join("h1", taken.name, "", "/x", "bad/name")
    assert await snapshot(etcd, prefix) == before


async def test_find_network_by_name_or_subnet(store):
    await store.create_network("blue", "10.77.0.0/24")
    assert (await store.engines.find_network("blue", "")).subnet == "10.77.0.0/24"
    assert (await store.engines.find_network("", "10.77.0.0/24")).name == "blue"
    with pytest.raises(NotFound, match="no vxmesh network has subnet 10.78.0.0/24"):
        await store.engines.find_network("", "10.78.0.0/24")
    with pytest.raises(InvalidArgument, match="name a vxmesh network"):
        await store.engines.find_network("", "")


async def test_engine_endpoints_publish_host_ports_as_run_p_does(store, etcd, prefix):
    await add_hosts(store)
    await store.create_network("blue", "10.77.0.0/24")
    web = await store.engines.attach("h2", "cni", "blue", ports=(PortMapping("tcp", 18080, 80),
                                                                PortMapping("udp", 0, 53)))
    assert web.ports[0] == PortMapping("tcp", 18080, 80)
    assert web.ports[1].protocol == "udp" and web.ports[1].host_port >= 32768
    with pytest.raises(FailedPrecondition, match=f"already published by container {web.name!r}"):
        await store.engines.attach("h2", "cni", "blue", ports=(PortMapping("tcp", 18080, 81),))
    with pytest.raises(InvalidArgument, match="invalid protocol 'sctp'"):
        await store.engines.attach("h2", "cni", "blue", ports=(PortMapping("sctp", 1, 1),))
    with pytest.raises(InvalidArgument, match="invalid container port 0"):
        await store.engines.attach("h2", "cni", "blue", ports=(PortMapping("tcp", 1, 0),))
    # another host's port is its own
    other = await store.engines.attach("h1", "cni", "blue", ports=(PortMapping("tcp", 18080, 80),))
    assert other.ports == [PortMapping("tcp", 18080, 80)]
    # Docker's -p comes with its endpoint, after the address
    docker = await store.engines.attach("h1", "docker", "blue")
    named = await store.engines.join("h1", docker.name, "", "", engine_endpoint="e" * 64,
                                     ports=(PortMapping("tcp", 18081, 80),))
    assert (named.engine_endpoint, named.ports) == ("e" * 64, [PortMapping("tcp", 18081, 80)])
    with pytest.raises(FailedPrecondition, match="already published"):
        await store.engines.join("h1", (await store.engines.attach("h1", "docker", "blue")).name, "", "",
                                 ports=(PortMapping("tcp", 18081, 80),))


async def test_a_forgotten_endpoint_is_reclaimed_in_one_transaction(store, etcd, prefix):
    """Its engine forgot it: the rows, address, host port and status go in one
    etcd revision, so the address is free the moment the endpoint leaves the
    network (a Detach frees it only once the host confirms the teardown)."""
    await add_hosts(store)
    await store.create_network("blue", "10.77.0.0/24")
    keep = await store.engines.attach("h2", "cni", "blue")
    lost = await store.engines.attach("h2", "cni", "blue", ports=(PortMapping("tcp", 18080, 80),))
    ip = lost.attachments[0].ip
    owned = [kv.key for kv, _ in await snapshot_owned(etcd, prefix, lost.name)]
    assert any("/ipam/" in k for k in owned) and any("/ports/" in k for k in owned), owned
    native = await store.create_container("c1", "h1", [], {}, "", ["blue"])
    with pytest.raises(FailedPrecondition, match="belongs to host 'h2', not 'h1'"):
        await store.engines.reclaim("h1", lost.name)
    with pytest.raises(FailedPrecondition, match="vxmesh's own"):
        await store.engines.reclaim("h1", native.name)
    before = await etcd.revision()
    await store.engines.reclaim("h2", lost.name)
    assert await etcd.revision() == before + 1          # one transaction
    assert await snapshot_owned(etcd, prefix, lost.name) == []
    assert {e.ip for e in await store.network_endpoints("blue")} == {keep.attachments[0].ip, native.attachments[0].ip}
    assert await etcd.get(store.keys.status(lost.name)) is None
    # the address and the host port are taken again at once
    heir = await store.engines.attach("h2", "cni", "blue", ip=ip, ports=(PortMapping("tcp", 18080, 80),))
    assert heir.attachments[0].ip == ip
    with pytest.raises(NotFound):
        await store.engines.reclaim("h2", lost.name)


async def snapshot_owned(etcd, prefix: str, name: str):
    """Every key under `prefix` that names container `name`, with its value."""
    kvs, _ = await etcd.get_prefix(prefix)
    return [(kv, kv.value) for kv in kvs if name.encode() in kv.value or kv.key.endswith("/" + name)]


async def test_the_engines_name_for_a_container_is_an_alias_in_every_hosts_table(store, etcd):
    """libnetwork names no container to its driver: the agent reads Docker's name
    from Docker's API and records it; the endpoint's row carries it as an alias,
    which every host's embedded DNS answers (agent/dns/names.py)."""
    await add_hosts(store)
    await store.create_network("blue", "10.77.0.0/24")
    docker = await store.engines.attach("h1", "docker", "blue")
    named = await store.engines.join("h1", docker.name, "f" * 64, "/var/run/docker/netns/1", "eth0",
                                     engine_name="web_1")
    assert named.attachments[0].aliases == ["web_1"]
    [row] = [e for e in await store.network_endpoints("blue") if e.container == docker.name]
    assert row.aliases == "web_1" and row.ip == docker.attachments[0].ip
    # Once: a later join naming it again changes nothing; one naming nothing keeps it.
    again = await store.engines.join("h1", docker.name, "f" * 64, "/var/run/docker/netns/1", "eth0",
                                     engine_name="web_1")
    assert again.attachments[0].aliases == ["web_1"]
    left = await store.engines.join("h1", docker.name, "", "")
    assert left.attachments[0].aliases == ["web_1"]
    with pytest.raises(InvalidArgument, match="invalid container name"):
        await store.engines.join("h1", docker.name, "", "", engine_name="../x")
    # Naming rewrites the row, keeping whether its container runs (put_status's mark).
    other = await store.engines.attach("h1", "docker", "blue")
    key = store.keys.endpoint("blue", other.name)
    [row] = [e for e in await store.network_endpoints("blue") if e.container == other.name]
    await etcd.put(key, dataclasses.replace(row, stopped=True).to_json())
    await store.engines.join("h1", other.name, "e" * 64, "/var/run/docker/netns/2", "eth0", engine_name="db")
    [row] = [e for e in await store.network_endpoints("blue") if e.container == other.name]
    assert (row.aliases, row.stopped) == ("db", True)


async def test_the_engines_aliases_for_a_container_join_its_name_in_the_table(store):
    """Docker's --network-alias, read by the agent from Docker's API, is answered like
    the container's name; a bad alias is refused before anything is stored."""
    await add_hosts(store)
    await store.create_network("blue", "10.77.0.0/24")
    docker = await store.engines.attach("h1", "docker", "blue")
    with pytest.raises(InvalidArgument, match="invalid network alias"):
        await store.engines.join("h1", docker.name, "f" * 64, "/var/run/docker/netns/1", "eth0",
                                 engine_name="web_1", engine_aliases=("db", "no_such host"))
    _, unchanged = await store.engines.records.container(docker.name)
    assert unchanged.attachments[0].aliases == [] and unchanged.sandbox == ""
    named = await store.engines.join("h1", docker.name, "f" * 64, "/var/run/docker/netns/1", "eth0",
                                     engine_name="web_1", engine_aliases=("db", "cache", "db"))
    assert named.attachments[0].aliases == ["web_1", "db", "cache"]
    [row] = [e for e in await store.network_endpoints("blue") if e.container == docker.name]
    assert row.aliases == "web_1 db cache"
    # Only what is new is added.
    again = await store.engines.join("h1", docker.name, "f" * 64, "/var/run/docker/netns/1", "eth0",
                                     engine_name="web_1", engine_aliases=("cache", "queue"))
    assert again.attachments[0].aliases == ["web_1", "db", "cache", "queue"]
