"""The embedded DNS's logic: name records from the view, lookups limited to
the asker's networks, answers, and forwarding (to a resolver on loopback)."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from agent.dns.etc_files import EMBEDDED, hosts_entries, resolv_conf
from agent.dns.names import NameTable, container_records
from agent.dns.resolver import Resolver, nameservers
from proto.records import Attachment, ContainerSpec, Endpoint, Network

ID = "ab" * 32
NETWORKS = {"blue": Network("blue", "10.77.0.0/24", "10.77.0.1", 4096, driver="overlay"),
            "lan": Network("lan", "10.50.0.0/24", "10.50.0.1", 0, driver="bridge", scope="local"),
            "bridge": Network("bridge", "", "", 0, driver="bridge", builtin=True)}


def table() -> NameTable:
    local = [ContainerSpec(id=ID, name="web1", host="h1", hostname="w", attachments=[
        Attachment("blue", "10.77.0.2", "m", aliases=["web"]), Attachment("lan", "10.50.0.2", "m"),
        Attachment("bridge", "172.17.0.2", "m")])]
    endpoints = [Endpoint("blue", "web1", "h1", "192.0.2.1", "10.77.0.2", "m", ID, "web"),
                 Endpoint("blue", "web2", "h2", "192.0.2.2", "10.77.0.3", "m", "cd" * 32, "web")]
    return NameTable(container_records(NETWORKS, endpoints, local, "h1"))


def test_names_short_ids_and_aliases_only_on_the_askers_networks():
    names = table()
    assert names.lookup("web1", ["blue"]) == ["10.77.0.2"]
    assert names.lookup("WEB1.", ["blue"]) == ["10.77.0.2"]       # DNS names ignore case
    assert names.lookup("abababababab", ["blue"]) == ["10.77.0.2"]
    assert names.lookup("web", ["blue"]) == ["10.77.0.2", "10.77.0.3"]   # an alias two containers share
    assert names.lookup("web2", ["lan"]) is None                  # not a network the asker is on
    assert names.lookup("web1", ["lan"]) == ["10.50.0.2"]
    assert names.lookup("web1", ["bridge"]) is None               # the default bridge has no names


def query(name: str, qtype: str = "A") -> bytes:
    return DNSRecord.question(name, qtype).pack()


async def test_answers_forwarding_and_failures():
    names = table()
    resolver = Resolver(lambda: names, [])
    reply = DNSRecord.parse(await resolver.answer(query("web1"), ["blue"]))
    assert [(str(r.rdata), r.ttl) for r in reply.rr] == [("10.77.0.2", 600)]
    empty = DNSRecord.parse(await resolver.answer(query("web1", "AAAA"), ["blue"]))
    assert (empty.header.rcode, empty.rr) == (RCODE.NOERROR, [])
    # Not ours and no resolver to ask.
    assert DNSRecord.parse(await resolver.answer(query("web2"), ["lan"])).header.rcode == RCODE.NXDOMAIN
    assert await resolver.answer(b"garbage", ["blue"]) is None

    # A resolver of the host, on loopback, answers the rest.
    class Upstream(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            q = DNSRecord.parse(data)
            r = q.reply()
            r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.99"), ttl=5))
            self.transport.sendto(r.pack(), addr)

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
    try:
        forwarding = Resolver(lambda: names, [transport.get_extra_info("sockname")])
        reply = DNSRecord.parse(await forwarding.answer(query("example.com"), ["blue"]))
        assert [str(r.rdata) for r in reply.rr] == ["192.0.2.99"]
        # Names of the asker's networks never leave the host.
        assert [str(r.rdata) for r in DNSRecord.parse(await forwarding.answer(query("web1"), ["blue"])).rr] == \
            ["10.77.0.2"]
    finally:
        transport.close()
    # A resolver that does not answer: SERVFAIL, not a hang.
    dead = Resolver(lambda: names, [("127.0.0.1", 9)])
    assert DNSRecord.parse(await dead.answer(query("example.com"), ["blue"])).header.rcode == RCODE.SERVFAIL


async def test_an_answer_too_large_for_udp_is_truncated():
    from agent.dns.names import NameRecord
    many = NameTable([NameRecord("web", "blue", tuple(f"10.77.{i // 250}.{i % 250 + 1}" for i in range(60)),
                                 "service:web")])
    resolver = Resolver(lambda: many, [])
    truncated = DNSRecord.parse(await resolver.answer(query("web"), ["blue"], udp=True))
    assert (truncated.header.tc, truncated.rr) == (1, [])
    assert len(DNSRecord.parse(await resolver.answer(query("web"), ["blue"])).rr) == 60   # over TCP: all


def test_the_files_a_container_reads():
    spec = ContainerSpec(id=ID, name="web1", host="h1", hostname="w", attachments=[
        Attachment("blue", "10.77.0.2", "m")])
    assert resolv_conf(spec, NETWORKS, ["192.0.2.53"]) == EMBEDDED
    default = ContainerSpec(id=ID, name="d", host="h1", attachments=[Attachment("bridge", "172.17.0.2", "m")])
    assert resolv_conf(default, NETWORKS, ["192.0.2.53"]) == "nameserver 192.0.2.53\n"
    assert hosts_entries(spec) == ("10.77.0.2\tw",)
    text = "search lab\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n"
    assert nameservers(text) == ["127.0.0.53", "192.0.2.53"]
    assert nameservers(text, reachable_from_container=True) == ["192.0.2.53"]



def test_services_answer_their_vip_and_tasks_name_their_running_tasks_on_their_networks_only():
    from agent.dns.names import NameTable, service_records
    from proto.records import Network, ServiceVip
    networks = {"blue": Network("blue", "10.77.0.0/24", "10.77.0.1", 4096, scope="global")}
    vips = [ServiceVip("blue", "web", "s1", "10.77.0.9", ["10.77.0.3", "10.77.0.4"]),
            ServiceVip("blue", "rr", "s2", "", ["10.77.0.5", "10.77.0.6"]),          # dnsrr
            ServiceVip("blue", "idle", "s3", "", []),                                 # nothing running
            ServiceVip("red", "hidden", "s4", "10.88.0.9", ["10.88.0.2"])]            # not this host's
    table = NameTable(service_records(networks, vips))
    assert table.lookup("web", ["blue"]) == ["10.77.0.9"]
    assert table.lookup("WEB.", ["blue"]) == ["10.77.0.9"]
    assert table.lookup("tasks.web", ["blue"]) == ["10.77.0.3", "10.77.0.4"]
    assert table.lookup("rr", ["blue"]) == ["10.77.0.5", "10.77.0.6"]
    assert table.lookup("idle", ["blue"]) is None and table.lookup("tasks.idle", ["blue"]) is None
    assert table.lookup("web", ["green"]) is None            # only on networks the asker shares
    assert table.lookup("hidden", ["red"]) is None


def test_a_hosts_mesh_leg_has_no_name():
    from agent.dns.names import container_records
    from proto.records import Endpoint, Network
    networks = {"blue": Network("blue", "10.77.0.0/24", "10.77.0.1", 4096, scope="global")}
    legs = [Endpoint("blue", "_mesh.h2", "h2", "192.0.2.2", "10.77.0.254", "02:42:0a:4d:00:fe")]
    assert container_records(networks, legs, [], "h1") == []


def test_names_follow_the_containers_running_state_on_every_host():
    """As in Docker, a container that is not running has no name: another host's
    by its endpoint's `stopped` mark, this host's by what its agent found."""
    from agent.convergers.embedded_dns import EmbeddedDns
    from agent.view import View
    from proto import vxmesh_pb2 as pb

    def change(key, record, field):
        return pb.Change(key=key, **{field: record.to_wire()})

    local = ContainerSpec(id=ID, name="web1", host="h1", attachments=[Attachment("blue", "10.77.0.2", "m")])
    remote = Endpoint("blue", "web2", "h2", "192.0.2.2", "10.77.0.3", "m", "cd" * 32)
    view = View("h1")
    view.apply(pb.ViewUpdate(revision=1, snapshot=True, changes=[
        change("n/blue", NETWORKS["blue"], "network"), change("c/web1", local, "container"),
        change("e/blue/web2", remote, "endpoint")]))
    dns = EmbeddedDns("h1", [], [])
    dns.refresh(view)
    assert dns.names().lookup("web1", ["blue"]) is None          # not started yet
    assert dns.names().lookup("web2", ["blue"]) == ["10.77.0.3"]
    dns.follow(ID, True)
    assert dns.names().lookup("web1", ["blue"]) == ["10.77.0.2"]  # at once, not a pass later
    dns.stop(ID)
    assert dns.names().lookup("web1", ["blue"]) is None
    # Control: the same endpoint, reported stopped by its host, loses its name.
    view.apply(pb.ViewUpdate(revision=2, changes=[
        change("e/blue/web2", dataclasses.replace(remote, stopped=True), "endpoint")]))
    dns.refresh(view)
    assert dns.names().lookup("web2", ["blue"]) is None
