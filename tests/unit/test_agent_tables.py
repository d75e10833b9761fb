"""A pass's work follows the change, not the size of the table: the view's
indexes and change stamps, the table converger's partial plans (against the
full plan they stand for), and the embedded DNS building its names only when
a lookup needs them. The kernel is faked; work is counted, never timed."""
from __future__ import annotations

import asyncio
import dataclasses
import random

from agent.convergers import tables as tables_converger
from agent.convergers.embedded_dns import EmbeddedDns
from agent.convergers.tables import Tables
from agent.table_diff import changed_keys, desired_entries, partial_plan, plan
from agent.view import View
from proto import vxmesh_pb2 as pb
from proto.records import Attachment, ContainerSpec, Endpoint, Network, mesh_leg

BLUE = Network(name="blue", subnet="10.64.0.0/18", gateway="10.64.0.1", vni=4096)
RED = Network(name="red", subnet="10.65.0.0/24", gateway="10.65.0.1", vni=4097)
TABLE = 2000


def endpoint(i: int, host: str = "", network: str = "blue", vtep: str = "") -> Endpoint:
    return Endpoint(network=network, container=f"c{i}", host=host or f"ghost{i % 20}",
                    vtep=vtep or f"192.0.2.{i % 20}", ip=f"10.64.{i // 250}.{i % 250 + 2}",
                    mac=f"02:42:0A:40:{i // 250:02x}:{i % 250 + 2:02x}")


def change(key: str, record=None) -> pb.Change:
    if record is None:
        return pb.Change(key=key, deleted=True)
    field = {Endpoint: "endpoint", Network: "network", ContainerSpec: "container"}[type(record)]
    return pb.Change(key=key, **{field: record.to_wire()})


class Updates:
    def __init__(self, view: View):
        self.view = view
        self.revision = 0

    def send(self, *changes: pb.Change, snapshot: bool = False) -> None:
        self.revision += 1
        self.view.apply(pb.ViewUpdate(revision=self.revision, snapshot=snapshot, changes=list(changes)))


def container(name: str, network: str = "blue", ip: str = "10.64.60.2") -> ContainerSpec:
    return ContainerSpec(id=name * 8, name=name, host="h1", attachments=[Attachment(network, ip, "02:42:00:00:00:01")])


def big_view() -> tuple[View, Updates]:
    view = View("h1")
    updates = Updates(view)
    updates.send(change("n/blue", BLUE), change("n/red", RED), change("c/m0", container("m0")),
                 *[change(f"e/blue/c{i}", endpoint(i)) for i in range(TABLE)], snapshot=True)
    return view, updates


def test_the_view_answers_by_kind_and_network():
    view, updates = big_view()
    updates.send(change("e/red/r1", endpoint(1, network="red")),
                 change("e/blue/_mesh.h1", Endpoint("blue", mesh_leg("h1"), "h1", "192.0.2.99", "10.64.63.1",
                                                    "02:42:00:00:00:fe")))
    assert view.endpoints_by_key("blue")["e/blue/c1"] == endpoint(1)     # every field as sent
    assert set(view.containers()) == {"m0"}
    assert set(view.networks()) == {"blue"}
    assert len(view.endpoints("blue")) == TABLE + 1
    assert [e.container for e in view.endpoints("red")] == ["c1"]
    assert len(view.all_endpoints()) == TABLE + 2
    assert [leg.container for leg in view.mesh_legs()] == [mesh_leg("h1")]
    updates.send(change("e/blue/c5"), change("c/m0"))
    assert len(view.endpoints("blue")) == TABLE and "e/blue/c5" not in view.endpoints_by_key("blue")
    assert view.containers() == {} and set(view.networks()) == {"blue"}   # the mesh leg keeps it
    updates.send(change("e/blue/_mesh.h1"))
    assert view.mesh_legs() == [] and view.networks() == {}


def test_a_networks_stamp_moves_exactly_when_its_endpoints_change():
    view, updates = big_view()
    blue, red = view.endpoints_changed("blue"), view.endpoints_changed("red")
    updates.send(change("c/m1", container("m1")))                 # a container: no endpoint
    updates.send(change("e/red/r1", endpoint(1, network="red")))  # another network's
    assert view.endpoints_changed("blue") == blue and view.endpoints_changed("red") != red
    for step in (change("e/blue/c1", endpoint(1, vtep="192.0.2.77")),   # replaced
                 change("e/blue/x", endpoint(TABLE + 1)),               # added
                 change("e/blue/x")):                                   # removed
        updates.send(step)
        assert view.endpoints_changed("blue") != blue
        blue = view.endpoints_changed("blue")
    updates.send(*[change(f"e/blue/c{i}", endpoint(i)) for i in range(3)], snapshot=True)
    assert view.endpoints_changed("blue") != blue                 # a snapshot may change anything


def test_partial_plans_say_what_the_full_comparison_says():
    """Against the kernel holding exactly the old table, the plan from the changed
    endpoints alone equals the full plan; MACs and addresses that several endpoints
    share (a container moving, a stale row) included."""
    rng = random.Random(19)
    for _ in range(200):
        before = {f"k{i}": endpoint(rng.randrange(30), host=rng.choice(["h1", "h2", "h3"]),
                                    vtep=rng.choice(["192.0.2.2", "192.0.2.3"])) for i in range(20)}
        now = dict(before)
        for _ in range(rng.randrange(1, 5)):
            key = f"k{rng.randrange(24)}"
            if rng.random() < 0.3:
                now.pop(key, None)
            else:
                now[key] = endpoint(rng.randrange(30), host=rng.choice(["h1", "h2", "h3"]),
                                    vtep=rng.choice(["192.0.2.2", "192.0.2.3"]))
        have_fdb, have_neigh = desired_entries(before.values(), "h1")
        full = plan(*desired_entries(now.values(), "h1"), have_fdb, have_neigh)
        partial = partial_plan(before, now, changed_keys(before, now), "h1")
        assert (partial.fdb_put, sorted(partial.fdb_del), partial.neigh_put, sorted(partial.neigh_del)) == \
               (full.fdb_put, full.fdb_del, full.neigh_put, full.neigh_del)


class Kernel:
    """One overlay network's table, as the faked kernel calls see it."""

    def __init__(self):
        self.fdb: dict[str, str] = {}
        self.neigh: dict[str, str] = {}
        self.reads = 0
        self.programmed: list[int] = []    # entries per program() call

    async def read_fdb(self, netns, vni):
        self.reads += 1
        return dict(self.fdb)

    async def read_neighbours(self, netns, vni):
        return dict(self.neigh)

    async def program(self, netns, vni, fdb_put, fdb_del, neigh_put, neigh_del):
        for mac in fdb_del:
            self.fdb.pop(mac, None)
        for ip in neigh_del:
            self.neigh.pop(ip, None)
        self.fdb.update(fdb_put)
        self.neigh.update(neigh_put)
        self.programmed.append(len(fdb_put) + len(fdb_del) + len(neigh_put) + len(neigh_del))
        return []


def test_a_pass_woken_by_one_change_does_not_walk_the_table(monkeypatch):
    kernel = Kernel()
    for name in ("read_fdb", "read_neighbours", "program"):
        monkeypatch.setattr(tables_converger.table, name, getattr(kernel, name))
    view, updates = big_view()
    tables = Tables("h1", view)

    def converge():
        asyncio.run(tables.converge([BLUE], 0.0))

    converge()
    assert (kernel.reads, kernel.programmed) == (1, [2 * TABLE])
    # A container of this host starts: its own endpoint needs no entry, nothing is read back.
    updates.send(change("c/m1", container("m1")), change("e/blue/m1", endpoint(TABLE + 5, host="h1")))
    converge()
    converge()
    assert (kernel.reads, kernel.programmed) == (1, [2 * TABLE])
    # Another host's container moves: its two entries, no more, and without reading the kernel.
    moved = endpoint(7, host="ghost99", vtep="192.0.2.99")
    updates.send(change("e/blue/c7", moved))
    converge()
    assert (kernel.reads, kernel.programmed[1:]) == (1, [1])          # the FDB entry; the neighbour is the same
    assert kernel.fdb[moved.mac.lower()] == "192.0.2.99"
    updates.send(change("e/blue/c8"))
    converge()
    assert kernel.programmed[2:] == [2] and endpoint(8).ip not in kernel.neigh
    # The periodic pass forgets: the kernel's table is read back whole, and a stale entry heals.
    kernel.fdb["02:42:de:ad:00:01"] = "192.0.2.1"
    del kernel.neigh[endpoint(9).ip]
    tables.forget()
    converge()
    assert kernel.reads == 2 and tables.full_reads == 2
    assert (kernel.fdb, kernel.neigh) == desired_entries(view.endpoints("blue"), "h1")


def test_a_network_that_left_is_read_back_when_it_returns(monkeypatch):
    kernel = Kernel()
    for name in ("read_fdb", "read_neighbours", "program"):
        monkeypatch.setattr(tables_converger.table, name, getattr(kernel, name))
    view, _ = big_view()
    tables = Tables("h1", view)
    asyncio.run(tables.converge([BLUE], 0.0))
    asyncio.run(tables.converge([], 0.0))          # its namespace is removed with its last container
    kernel.fdb.clear(), kernel.neigh.clear()
    asyncio.run(tables.converge([BLUE], 0.0))
    assert kernel.reads == 2 and len(kernel.fdb) == TABLE
    # So is one whose record changed (a namespace built anew for it).
    asyncio.run(tables.converge([dataclasses.replace(BLUE, gateway="10.64.0.254")], 0.0))
    assert kernel.reads == 3


def test_names_are_built_by_a_lookup_not_by_a_pass():
    view, updates = big_view()
    dns = EmbeddedDns("h1", [], [])
    for _ in range(3):
        dns.refresh(view)
    assert dns.builds == 0
    assert dns.names().lookup("c3", ["blue"]) == [endpoint(3).ip]
    assert dns.names().lookup("c4", ["blue"]) == [endpoint(4).ip]
    dns.refresh(view)                        # the next pass, nothing changed
    dns.names()
    assert dns.builds == 1
    updates.send(change("e/blue/c3"))        # a change: the next lookup sees it
    dns.refresh(view)
    assert dns.builds == 1
    assert dns.names().lookup("c3", ["blue"]) is None
    assert dns.builds == 2
