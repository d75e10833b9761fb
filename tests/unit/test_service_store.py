"""Services in etcd: their records, the leader's election and fence, and two
reconcilers on one etcd that never run a slot twice (against a real etcd)."""
from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import pytest

from controller.cache import StateCache
from controller.etcd import Op
from controller.services.election import Election
from controller.services.reconciler import Reconciler
from controller.store.containers import TaskOrigin
from controller.store.fence import NotLeader
from controller.run_options import RunImage, RunOptions
from proto.network_mode import NetworkMode
from proto.errors import AlreadyExists, FailedPrecondition, NotFound
from proto.records import Host, PortMapping, ServiceSpec
from tests.helpers.polling import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOSTS = ("h1", "h2", "h3")
BLUE = NetworkMode.parse(["blue"])


async def cluster(store) -> None:
    for i, name in enumerate(HOSTS, 1):
        await store.register_host(Host(name=name, vtep=f"192.0.2.{i}", api=f"192.0.2.{i}:7001"))
        await store.mark_alive(name, 60)          # its agent connected
        await store.settle(name, 120)             # the liveness rule: in every table
    await store.create_network("blue", "10.77.0.0/24")


def web(replicas: int = 5, **fields) -> ServiceSpec:
    fields.setdefault("endpoint_mode", "dnsrr")
    return ServiceSpec(name="web", id="ab" * 32, image="busybox", image_reference="docker.io/library/busybox:latest",
                       image_digest="sha256:" + "0" * 64, command=["sleep", "3600"], networks=["blue"],
                       replicas=replicas, **fields)


async def tasks_of(store, service_id: str = "ab" * 32):
    return [spec for spec, _ in await store.list_containers() if spec.service_id == service_id]


async def test_a_service_record_is_created_scaled_and_removed(store):
    await cluster(store)
    with pytest.raises(NotFound, match="network 'red' not found"):
        await store.services.create(dataclasses.replace(web(), networks=["red"]))
    await store.services.create(web())
    with pytest.raises(AlreadyExists, match="service 'web' already exists"):
        await store.services.create(web())
    assert (await store.services.scale("web", 7)).replicas == 7
    assert [s.replicas for s in await store.services.list_all()] == [7]
    await store.services.create(dataclasses.replace(web(), name="agent", id="cd" * 32, mode="global"))
    with pytest.raises(FailedPrecondition, match="global mode"):
        await store.services.scale("agent", 2)
    await store.services.remove("web")
    with pytest.raises(NotFound, match="service 'web' not found"):
        await store.services.get("web")


async def test_a_service_holds_a_vip_from_ipam_and_its_network_while_it_exists(store):
    await cluster(store)
    await store.create_network("local", "10.88.0.0/24", driver="bridge")
    with pytest.raises(FailedPrecondition, match="network 'local' is a bridge network"):
        await store.services.create(dataclasses.replace(web(), networks=["local"]))
    created = await store.services.create(dataclasses.replace(web(0), endpoint_mode="vip"))
    vip = created.virtual_ips["blue"]
    assert vip == "10.77.0.2"                                # the first free address, as a container's
    assert await store.etcd.get(store.keys.ipam("blue", vip)) is not None
    rr = await store.services.create(dataclasses.replace(web(0), name="rr", id="cd" * 32, endpoint_mode="dnsrr"))
    assert rr.virtual_ips == {}
    with pytest.raises(FailedPrecondition, match="network .blue. is used by service rr, web"):
        await store.remove_network("blue")
    for name in ("web", "rr"):
        await store.services.remove(name)
    assert await store.etcd.get(store.keys.ipam("blue", vip)) is None
    await store.remove_network("blue")


async def test_a_deposed_leader_writes_nothing(store, etcd):
    await cluster(store)
    first = Election(etcd, store.keys, "services", "c1", ttl=5)
    second = Election(etcd, store.keys, "services", "c2", ttl=5)
    fence = await first.campaign()
    assert await second._try() is None                      # one leader at a time
    origin = TaskOrigin("web", "ab" * 32, 1)
    options = RunOptions(image=RunImage("docker.io/library/busybox:latest", "sha256:" + "0" * 64))
    await store.create_container("web.1.a", "h1", [], {}, "a", ["blue"], options, task=origin, fence=fence)
    # c1 dies: its lease goes (here at once), c2 takes the role.
    await etcd.revoke(first.lease)
    await second.campaign()
    with pytest.raises(NotLeader):
        await store.create_container("web.1.b", "h2", [], {}, "b", ["blue"], options, task=origin, fence=fence)
    with pytest.raises(NotLeader):
        await store.delete_container("web.1.a", fence=fence)
    assert [t.name for t in await tasks_of(store)] == ["web.1.a"]
    # Control: the same fence compare, checked by etcd itself, fails the transaction even
    # when the check before it is skipped (a leader that has not yet noticed).
    result = await etcd.txn([fence.compare], [Op.put(store.keys.container("x"), b"{}")])
    assert not result.succeeded
    await second.resign()


async def reconcilers(store, etcd, count: int):
    cache = StateCache(etcd, store.keys)
    await cache.start()
    made = [Reconciler(store, cache, Election(etcd, store.keys, "services", f"c{i}", ttl=2)) for i in range(count)]
    return cache, made, [asyncio.create_task(r.run()) for r in made]


def crash(reconciler: Reconciler, task: asyncio.Task) -> None:
    """Stop a reconciler as a killed process would: no resignation, the lease just lapses."""
    async def nothing() -> None:
        return None
    reconciler.election.resign = nothing
    task.cancel()


async def test_two_reconcilers_run_each_slot_once_and_the_survivor_takes_over(store, etcd):
    await cluster(store)
    cache, made, running = await reconcilers(store, etcd, 2)
    try:
        await store.services.create(web(5))

        async def count_is(n: int) -> bool:
            return len(await tasks_of(store)) == n
        await wait_until(lambda: count_is(5), 20, "five tasks")
        await asyncio.sleep(3)                              # more passes of both: nothing more
        tasks = await tasks_of(store)
        assert sorted(t.slot for t in tasks) == [1, 2, 3, 4, 5]
        assert sorted(Counter(t.host for t in tasks).values()) == [1, 2, 2]
        leader = next(i for i, r in enumerate(made) if r.election.lease)

        crash(made[leader], running[leader])
        await store.services.scale("web", 8)
        await wait_until(lambda: count_is(8), 20, "eight tasks after the leader died")
        await asyncio.sleep(3)
        tasks = await tasks_of(store)
        assert sorted(t.slot for t in tasks) == list(range(1, 9))
        assert sorted(Counter(t.host for t in tasks).values()) == [2, 3, 3]

        await store.services.remove("web")
        await wait_until(lambda: count_is(0), 20, "no task after service rm")
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await cache.stop()


async def test_the_tasks_of_a_dead_host_move_and_exited_ones_are_refilled(store, etcd):
    await cluster(store)
    cache, _, running = await reconcilers(store, etcd, 1)
    try:
        await store.services.create(web(3, restart_delay=0.2))

        async def placed(check) -> bool:
            return check(await tasks_of(store))
        await wait_until(lambda: placed(lambda t: sorted(x.host for x in t) == list(HOSTS)), 20, "one per host")
        # h3 is declared dead (its agent gone, the liveness rule took it out of the
        # tables): after the grace its task is rescheduled on h1 or h2.
        agent = await etcd.get(store.keys.agent("h3"))
        await etcd.revoke(agent.lease)
        await etcd.delete(store.keys.alive("h3"))
        await wait_until(lambda: placed(lambda t: len(t) == 3 and "h3" not in {x.host for x in t}), 20,
                         "h3's task moved")
        # A task that exits is replaced, with its restart count.
        victim = (await tasks_of(store))[0]
        _, status = await store.get_container(victim.name)
        await store.put_status(victim.host, dataclasses.replace(status, state="exited", exit_code=1,
                                                               finished_at=1.0))
        await wait_until(lambda: placed(lambda t: victim.name not in {x.name for x in t} and len(t) == 3), 20,
                         "the exited task replaced")
        refill = next(t for t in await tasks_of(store) if t.slot == victim.slot)
        assert refill.restarts == 1
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await cache.stop()


async def test_the_leader_lists_only_running_tasks_behind_a_vip(store, etcd):
    await cluster(store)
    cache, _, running = await reconcilers(store, etcd, 1)
    try:
        created = await store.services.create(web(2, endpoint_mode="vip", restart_delay=30.0))
        await wait_until(lambda: _count(store, 2), 20, "two tasks")
        await wait_until(lambda: _vip_is(store, created.virtual_ips["blue"], []), 20, "a VIP with no backend yet")
        tasks = await tasks_of(store)
        for task in tasks:                                  # their agents report them running
            _, status = await store.get_container(task.name)
            await store.put_status(task.host, dataclasses.replace(status, state="running"))
        addresses = sorted(t.attachments[0].ip for t in tasks)
        await wait_until(lambda: _vip_is(store, created.virtual_ips["blue"], addresses), 20, "both behind the VIP")
        _, status = await store.get_container(tasks[0].name)
        await store.put_status(tasks[0].host, dataclasses.replace(status, state="exited", exit_code=1,
                                                                 finished_at=10**10))
        await wait_until(lambda: _vip_is(store, created.virtual_ips["blue"], [tasks[1].attachments[0].ip]), 20,
                         "the exited task out, while its back-off keeps it in place")
        assert tasks[0].name in {t.name for t in await tasks_of(store)}
        await store.services.remove("web")
        assert await store.services.vips() == []
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await cache.stop()


async def _count(store, n: int) -> bool:
    return len(await tasks_of(store)) == n


async def _vip_is(store, vip: str, backends: list[str]) -> bool:
    found = await store.services.vips()
    return [(v.vip, v.backends) for v in found] == [(vip, backends)]


async def test_the_routing_mesh_and_containers_never_share_a_port(store):
    """A mesh port is open on every host: `run -p` on it is refused, a port chosen for
    `-p 80` avoids it, and a service cannot publish a port a container holds; each
    refusal stores nothing."""
    await cluster(store)
    await store.services.create(web(ports=[PortMapping("tcp", 8080, 80)], publish_mode="ingress"))
    with pytest.raises(FailedPrecondition, match="host port 8080/tcp is published by service 'web' on every host"):
        await store.create_container("c1", "h2", ["true"], {}, "", BLUE,
                                     RunOptions(ports=(PortMapping("tcp", 8080, 80),)))
    assert await store.list_containers() == []
    # A free port is chosen past the mesh's (32768 taken by the mesh here).
    await store.services.update("web", lambda s: dataclasses.replace(
        s, ports=[PortMapping("tcp", 8080, 80), PortMapping("tcp", 32768, 81)]))
    chosen = await store.create_container("c1", "h2", ["true"], {}, "", BLUE,
                                          RunOptions(ports=(PortMapping("tcp", 0, 80), PortMapping("tcp", 9090, 90))))
    assert [p.host_port for p in chosen.ports] == [32769, 9090]
    # The other way round: the container's port on h2 refuses a service that would publish it everywhere.
    other = dataclasses.replace(web(ports=[PortMapping("tcp", 9090, 80)], publish_mode="ingress"),
                                name="api", id="cd" * 32)
    with pytest.raises(FailedPrecondition, match="port 9090/tcp is already published by container 'c1' on host 'h2'"):
        await store.services.create(other)
    with pytest.raises(FailedPrecondition, match="port 9090/tcp is already published by container 'c1'"):
        await store.services.update("web", lambda s: dataclasses.replace(s, ports=[*s.ports, PortMapping("tcp", 9090, 1)]))
    assert [s.name for s in await store.services.list_all()] == ["web"]
    assert [p.host_port for p in (await store.services.get("web")).ports] == [8080, 32768]


async def test_the_leader_reads_nothing_from_etcd_while_there_is_no_service(store, etcd, monkeypatch):
    await cluster(store)
    reads = []
    list_containers = store.list_containers

    async def counted():
        reads.append(cache.revision)
        return await list_containers()
    monkeypatch.setattr(store, "list_containers", counted)
    cache, _, running = await reconcilers(store, etcd, 1)
    try:
        # Containers come and go, and each change wakes the leader: without a
        # service it has nothing to plan, and reads no container.
        for i in range(5):
            await store.create_container(f"plain{i}", "h1", [], {}, "", ["blue"])
        await asyncio.sleep(2.5)                         # more than a periodic pass
        assert reads == []
        assert not cache.index.has_service_state()
        # The control: a service makes every pass read the state again, and run its tasks.
        await store.services.create(web(2))
        await wait_until(lambda: cache.index.has_service_state(), 10, "the service in the mirror")

        async def two_tasks() -> bool:
            return len(await tasks_of(store)) == 2
        await wait_until(two_tasks, 20, "two tasks")
        assert reads
        await store.services.remove("web")
        await wait_until(lambda: not cache.index.has_service_state(), 20, "tasks and VIP gone from the mirror")
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await cache.stop()
