"""The store's Docker network modes, bridge networks, published ports and
connect/disconnect, against a real etcd (fixtures shared with test_store)."""
from __future__ import annotations

import pytest

from proto.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from controller.run_options import RunImage, RunOptions
from proto.network_mode import NetworkMode
from proto.records import Host, Mount, PortMapping, Ulimit
from tests.helpers.etcd import snapshot

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def add_host(store, name="h1", vtep="192.0.2.1", bridge="172.17.0.0/16"):
    await store.register_host(Host(name=name, vtep=vtep, api=f"{vtep}:7001", bridge_subnet=bridge))


async def test_builtin_networks_exist_once_and_cannot_be_removed(store):
    await store.ensure_builtin_networks()
    first = {n.name: n for n in await store.list_networks()}
    await store.ensure_builtin_networks()  # a second controller starting
    again = {n.name: n for n in await store.list_networks()}
    assert {n: (x.driver, x.builtin) for n, x in again.items()} == {
        "bridge": ("bridge", True), "host": ("host", True), "none": ("null", True)}
    assert first["bridge"].id == again["bridge"].id
    for name in ("bridge", "host", "none"):
        with pytest.raises(FailedPrecondition, match="pre-defined network"):
            await store.remove_network(name)
        with pytest.raises(AlreadyExists):
            await store.create_network(name, "10.9.0.0/24", driver="bridge")


async def test_default_network_is_the_hosts_own_bridge_subnet(store, etcd, prefix):
    await store.ensure_builtin_networks()
    await add_host(store, "h1", "192.0.2.1", "172.17.0.0/16")
    await add_host(store, "h2", "192.0.2.2", "172.30.0.0/24")
    a = await store.create_container("a", "h1", ["true"], {}, "", [])
    b = await store.create_container("b", "h2", ["true"], {}, "", [])
    c = await store.create_container("c", "h1", ["true"], {}, "", [])
    d = await store.create_container("d", "h2", ["true"], {}, "", [])
    # Each host allocates from its own bridge; addresses repeat across hosts.
    assert [(x.attachments[0].network, x.attachments[0].ip) for x in (a, b, c, d)] == [
        ("bridge", "172.17.0.2"), ("bridge", "172.30.0.2"), ("bridge", "172.17.0.3"), ("bridge", "172.30.0.3")]
    # Local networks stream no table rows to other hosts.
    assert (await etcd.get_prefix(f"{prefix}endpoints/"))[0] == []
    endpoints = await store.network_endpoints("bridge")
    assert sorted((e.container, e.host, e.ip) for e in endpoints) == [
        ("a", "h1", "172.17.0.2"), ("b", "h2", "172.30.0.2"), ("c", "h1", "172.17.0.3"), ("d", "h2", "172.30.0.3")]
    await store.delete_container("a")
    assert await store.release_container("a", "h1")
    e = await store.create_container("e", "h1", ["true"], {}, "", [])
    assert e.attachments[0].ip == "172.17.0.2"  # freed and reused


async def test_user_bridge_network_is_per_host_and_guards_removal(store):
    await add_host(store, "h1", "192.0.2.1")
    await add_host(store, "h2", "192.0.2.2")
    net = await store.create_network("lan", "10.50.0.0/24", driver="bridge")
    assert (net.driver, net.vni, net.scope) == ("bridge", 0, "local")
    x = await store.create_container("x", "h1", ["true"], {}, "", ["lan"])
    y = await store.create_container("y", "h2", ["true"], {}, "", ["lan"])
    assert x.attachments[0].ip == y.attachments[0].ip == "10.50.0.2"
    with pytest.raises(FailedPrecondition, match="has active endpoints: x, y"):
        await store.remove_network("lan")
    for name, host in (("x", "h1"), ("y", "h2")):
        await store.delete_container(name)
        await store.release_container(name, host)
    await store.remove_network("lan")
    assert [n.name for n in await store.list_networks()] == []


async def test_modes_take_no_addresses_and_are_exclusive(store, etcd, prefix):
    await store.ensure_builtin_networks()
    await add_host(store)
    await store.create_network("blue", "10.77.0.0/24")
    host = await store.create_container("h", "h1", ["true"], {}, "", ["host"])
    none = await store.create_container("n", "h1", ["true"], {}, "", ["none"])
    assert (host.network_mode, host.attachments, none.network_mode) == ("host", [], "none")
    shared = await store.create_container("s", "h1", ["true"], {}, "", ["container:n"])
    assert NetworkMode.of(shared).container == "n"
    await add_host(store, "h2", "192.0.2.2")
    before = await snapshot(etcd, prefix)
    refusals = [
        (["host", "blue"], InvalidArgument, "--network host cannot be combined"),
        (["container:ghost"], NotFound, "no such container 'ghost'"),
        (["container:z"], InvalidArgument, "cannot join its own network namespace"),
        (["container:bad/name"], InvalidArgument, "invalid container name"),
    ]
    for networks, error, message in refusals:
        with pytest.raises(error, match=message):
            await store.create_container("z", "h1", ["true"], {}, "", networks)
    with pytest.raises(FailedPrecondition, match="runs on host 'h1', not 'h2'"):
        await store.create_container("z", "h2", ["true"], {}, "", ["container:n"])
    with pytest.raises(InvalidArgument, match="port publishing and --network none"):
        await store.create_container("z", "h1", ["true"], {}, "", ["none"],
                                     RunOptions(ports=(PortMapping("tcp", 80, 80),)))
    with pytest.raises(FailedPrecondition, match="has no interfaces of its own"):
        await store.connect("h", "blue")
    assert (await snapshot(etcd, prefix))[0] == before[0]


async def test_published_ports_are_reserved_per_host_and_released(store, etcd, prefix):
    await store.ensure_builtin_networks()
    await add_host(store, "h1", "192.0.2.1")
    await add_host(store, "h2", "192.0.2.2")
    web = await store.create_container(
        "web", "h1", ["true"], {}, "", [],
        RunOptions(ports=(PortMapping("tcp", 8080, 80), PortMapping("tcp", 0, 443), PortMapping("udp", 8080, 53))))
    assert [str(p) for p in web.ports] == ["8080->80/tcp", "32768->443/tcp", "8080->53/udp"]
    before = await snapshot(etcd, prefix)
    with pytest.raises(FailedPrecondition,
                       match="host port 8080/tcp on host 'h1' is already published by container 'web'"):
        await store.create_container("web2", "h1", ["true"], {}, "", [],
                                     RunOptions(ports=(PortMapping("tcp", 8080, 80),)))
    for bad, message in ((PortMapping("sctp", 1, 1), "invalid protocol"), (PortMapping("tcp", 1, 0), "container port"),
                         (PortMapping("tcp", 70000, 1), "host port")):
        with pytest.raises(InvalidArgument, match=message):
            await store.create_container("web2", "h1", ["true"], {}, "", [], RunOptions(ports=(bad,)))
    with pytest.raises(InvalidArgument, match="published twice"):
        await store.create_container("web2", "h1", ["true"], {}, "", [],
                                     RunOptions(ports=(PortMapping("tcp", 9, 1), PortMapping("tcp", 9, 2))))
    assert (await snapshot(etcd, prefix))[0] == before[0]
    # Another host has its own ports.
    other = await store.create_container("web2", "h2", ["true"], {}, "", [],
                                         RunOptions(ports=(PortMapping("tcp", 8080, 80),)))
    assert [str(p) for p in other.ports] == ["8080->80/tcp"]
    await store.delete_container("web")
    assert await store.release_container("web", "h1")
    assert [kv.key.rsplit("/", 1)[1] for kv in (await etcd.get_prefix(f"{prefix}ports/"))[0]] == ["8080-tcp"]
    again = await store.create_container("web3", "h1", ["true"], {}, "", [],
                                         RunOptions(ports=(PortMapping("tcp", 8080, 80),)))
    assert again.ports[0].host_port == 8080


async def test_run_options_are_checked(store):
    await store.ensure_builtin_networks()
    await add_host(store)
    cases = [
        (RunOptions(working_dir="relative"), "-w 'relative': the working directory must be an absolute path"),
        (RunOptions(user="a b"), "invalid -u 'a b'"),
        (RunOptions(cap_add=("net_admin",)), "not a canonical capability name"),
        (RunOptions(seccomp="tight"), "seccomp 'tight' is not one of"),
        (RunOptions(seccomp="profile", seccomp_profile="{}"), "must be a JSON object with a \"defaultAction\""),
        (RunOptions(ulimits=(Ulimit("nofile", 10, 5),)), "soft limit must not exceed the hard limit"),
        (RunOptions(ulimits=(Ulimit("nofile", 1, 1), Ulimit("nofile", 2, 2))), "--ulimit nofile is given twice"),
        (RunOptions(mounts=(Mount("data", "/data"),)), "the source must be an absolute path"),
        (RunOptions(mounts=(Mount("/a", "/x/../y"),)), "'..' is not allowed"),
        (RunOptions(mounts=(Mount("/a", "/d"), Mount("/b", "/d/"))), "duplicate mount point /d"),
        (RunOptions(memory_bytes=1000), "the minimum is"),
        (RunOptions(cpus=-1), "invalid --cpus"),
    ]
    for options, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            await store.create_container("z", "h1", ["true"], {}, "", [], options)
    image = RunImage("docker.io/library/busybox:latest", "sha256:" + "d" * 64, "sha256:" + "c" * 64, ("80/tcp",))
    spec = await store.create_container("z", "h1", ["true"], {}, "", [], RunOptions(
        mounts=(Mount("/srv/data", "/data", True),), memory_bytes=64 << 20, cpus=0.5, pids_limit=20,
        image=image, entrypoint=(), entrypoint_set=True, working_dir="/srv", user="app:staff", read_only=True,
        cap_add=("CAP_NET_ADMIN",), cap_drop=("ALL",), seccomp="unconfined", allow_new_privileges=True,
        ulimits=(Ulimit("nofile", 512, 1024),)))
    assert (spec.mounts, spec.memory_bytes, spec.cpus, spec.pids_limit) == (
        [Mount("/srv/data", "/data", True)], 64 << 20, 0.5, 20)
    assert (spec.image, spec.image_digest, spec.image_id, spec.exposed_ports) == (
        image.reference, image.digest, image.id, ["80/tcp"])
    assert spec.pinned_image == f"docker.io/library/busybox:latest@sha256:{'d' * 64}"
    assert (spec.entrypoint, spec.entrypoint_set, spec.working_dir, spec.user, spec.read_only) == (
        [], True, "/srv", "app:staff", True)
    assert (spec.cap_add, spec.cap_drop, spec.privileged, spec.seccomp, spec.allow_new_privileges, spec.ulimits) == (
        ["CAP_NET_ADMIN"], ["ALL"], False, "unconfined", True, [Ulimit("nofile", 512, 1024)])
    stored, _ = await store.get_container("z")
    assert stored == spec      # through etcd's JSON and back


async def test_connect_and_disconnect(store, etcd, prefix):
    await store.ensure_builtin_networks()
    await add_host(store)
    await store.create_network("blue", "10.77.0.0/24")
    await store.create_network("lan", "10.50.0.0/24", driver="bridge")
    await store.create_container("c", "h1", ["true"], {}, "", ["blue"])
    spec = await store.connect("c", "lan")
    assert [(a.network, a.ip) for a in spec.attachments] == [("blue", "10.77.0.2"), ("lan", "10.50.0.2")]
    with pytest.raises(AlreadyExists, match="already connected to network 'lan'"):
        await store.connect("c", "lan")
    with pytest.raises(NotFound, match="network 'ghost' not found"):
        await store.connect("c", "ghost")
    spec = await store.disconnect("c", "blue")
    assert spec.networks == ["lan"]
    assert await etcd.get(f"{prefix}endpoints/blue/c") is None
    assert await etcd.get(f"{prefix}ipam/blue/10.77.0.2") is None
    with pytest.raises(NotFound, match="is not connected to network 'blue'"):
        await store.disconnect("c", "blue")
    spec = await store.connect("c", "blue")
    assert spec.networks == ["lan", "blue"]
    assert (await store.get_container("c"))[0].networks == ["lan", "blue"]
