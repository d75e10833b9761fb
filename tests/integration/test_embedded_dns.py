"""Names that resolve, as on Docker's user networks: asked from inside the
containers with their own resolver (busybox's nslookup and ping reading the
container's /etc/resolv.conf), across hosts, and only on shared networks."""
from __future__ import annotations

import time

import pytest

from deploy.lab import EXT_IP
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(busybox_archive):
    # Forwarded names go to the lab's outside server's address, never to this machine's resolvers.
    with lab_with_blue(hosts=2, image=busybox_archive, agent_options={"dns": [EXT_IP]}) as lab:
        lab.cli("network", "create", "--subnet", "10.78.0.0/24", "red")
        lab.cli("network", "create", "-d", "bridge", "--subnet", "10.79.0.0/24", "lan")
        for name, host, extra in (("a1", 0, ("--network", "blue", "--network-alias", "web")),
                                  ("b1", 1, ("--network", "blue", "-h", "bee")),
                                  ("c1", 1, ("--network", "red",)),
                                  ("l1", 0, ("--network", "lan",)),
                                  ("l2", 0, ("--network", "lan",)),
                                  ("d1", 0, ())):
            lab.cli("run", "-d", "--name", name, "--host", lab.hosts[host].name, *extra, BUSYBOX, "sleep", "3600")
        yield lab


def lookup(lab, asker: str, name: str) -> str | None:
    """The address `asker`'s resolver gives for `name`, None when it has none."""
    result = lab.cli("exec", asker, "--", "nslookup", "-type=a", name, check=False)
    if result.returncode != 0:
        return None
    addresses = [line.split()[-1] for line in result.stdout.splitlines()[2:] if line.startswith("Address")]
    return addresses[0] if addresses else None


def ip(lab, name: str, network: str) -> str:
    return inspect(lab, name)["networks"][network]["ip"]


def test_names_aliases_and_short_ids_resolve_across_hosts(lab):
    a1 = ip(lab, "a1", "blue")
    assert lookup(lab, "b1", "a1") == a1
    assert lookup(lab, "b1", "web") == a1
    assert lookup(lab, "b1", inspect(lab, "a1")["id"][:12]) == a1
    assert lookup(lab, "a1", "b1") == ip(lab, "b1", "blue")
    # The name works for what people use it for: ping across hosts.
    assert lab.cli("exec", "b1", "--", "ping", "-c", "1", "-W", "2", "a1", check=False).returncode == 0


def test_names_resolve_only_on_shared_networks(lab):
    assert lookup(lab, "c1", "a1") is None
    assert lookup(lab, "c1", "web") is None
    assert lookup(lab, "a1", "c1") is None
    # Connected with an alias, a1 answers on red under it.
    lab.cli("network", "connect", "--alias", "db", "red", "a1")
    assert lookup(lab, "c1", "db") == ip(lab, "a1", "red")
    assert lookup(lab, "c1", "a1") == ip(lab, "a1", "red")
    assert lookup(lab, "b1", "db") is None
    lab.cli("network", "disconnect", "red", "a1")
    assert lookup(lab, "c1", "a1") is None


def test_a_bridge_network_resolves_its_own_hosts_containers(lab):
    assert lookup(lab, "l1", "l2") == ip(lab, "l2", "lan")
    assert lookup(lab, "l1", "a1") is None


def test_the_files_a_container_reads(lab):
    assert lab.cli("exec", "b1", "--", "cat", "/etc/resolv.conf").stdout == "nameserver 127.0.0.11\noptions ndots:0\n"
    assert lab.cli("exec", "b1", "--", "cat", "/etc/hostname").stdout == "bee\n"
    assert f"{ip(lab, 'b1', 'blue')}\tbee" in lab.cli("exec", "b1", "--", "cat", "/etc/hosts").stdout.splitlines()
    # The default bridge gets the host's resolvers, as in Docker.
    assert lab.cli("exec", "d1", "--", "cat", "/etc/resolv.conf").stdout == f"nameserver {EXT_IP}\n"
    # --network container:NAME shares NAME's files and resolver.
    lab.cli("run", "-d", "--name", "s1", "--network", "container:b1", BUSYBOX, "sleep", "3600")
    for path in ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts"):
        assert lab.cli("exec", "s1", "--", "cat", path).stdout == lab.cli("exec", "b1", "--", "cat", path).stdout
    assert lookup(lab, "s1", "a1") == ip(lab, "a1", "blue")
    lab.cli("rm", "-f", "s1")


def test_other_names_are_forwarded_to_the_hosts_resolvers(lab):
    # Nobody answers DNS at the configured resolver: the container's resolver
    # says it failed (SERVFAIL) rather than inventing an answer.
    result = lab.cli("exec", "b1", "--", "nslookup", "-type=a", "example.com", check=False)
    assert result.returncode != 0


def test_no_stale_answer_after_rm(lab):
    lab.cli("run", "-d", "--name", "gone1", "--host", lab.hosts[0].name, "--network", "blue",
            BUSYBOX, "sleep", "3600")
    assert lookup(lab, "b1", "gone1") is not None
    lab.cli("rm", "-f", "gone1")
    removed = time.monotonic()
    while lookup(lab, "b1", "gone1") is not None:
        assert time.monotonic() - removed < 10, "the name still resolves 10 s after rm"
    print(f"\nname gone from another host's resolver {time.monotonic() - removed:.3f}s after `rm` returned")


def test_tcp_queries_are_answered_too(lab):
    """What a resolver falls back to when an answer is truncated: DNS over TCP
    at the same 127.0.0.11:53, from inside the container (busybox's nc)."""
    from dnslib import DNSRecord
    query = DNSRecord.question("a1", "A").pack()
    framed = len(query).to_bytes(2, "big") + query
    escaped = "".join(f"\\{byte:03o}" for byte in framed)
    out = lab.cli("exec", "b1", "--", "sh", "-c",
                  f"printf '{escaped}' | nc -w 2 127.0.0.11 53 | od -An -v -tx1").stdout
    data = bytes.fromhex("".join(out.split()))
    reply = DNSRecord.parse(data[2:2 + int.from_bytes(data[:2], "big")])
    assert [str(r.rdata) for r in reply.rr] == [ip(lab, "a1", "blue")]


def test_a_stopped_containers_name_does_not_resolve_until_it_starts_again(lab):
    """As in Docker: `stop` takes a container's names out of the embedded DNS of
    every host (asked here from its own host and from another), `start` brings
    them back; the control is the name resolving while it runs."""
    lab.cli("run", "-d", "--name", "nap1", "--host", lab.hosts[0].name, "--network", "blue",
            "--network-alias", "napper", BUSYBOX, "sleep", "3600")
    try:
        address = ip(lab, "nap1", "blue")
        for asker in ("a1", "b1"):          # a1 on nap1's host, b1 on the other
            assert lookup(lab, asker, "nap1") == address
            assert lookup(lab, asker, "napper") == address
        lab.cli("stop", "-t", "0", "nap1")
        for asker in ("a1", "b1"):
            assert lookup(lab, asker, "nap1") is None, f"{asker} still resolves a stopped container's name"
            assert lookup(lab, asker, "napper") is None
        # Its pings fail by name too, as with Docker (not a stale address that no one answers).
        assert lab.cli("exec", "b1", "--", "ping", "-c", "1", "-W", "1", "nap1", check=False).returncode != 0
        lab.cli("start", "nap1")
        started = time.monotonic()
        for asker in ("a1", "b1"):
            assert lookup(lab, asker, "nap1") == address, f"{asker} does not resolve nap1 after start"
            assert lookup(lab, asker, "napper") == address
        print(f"\nname back on both hosts {time.monotonic() - started:.3f}s after `start` returned")
        assert lab.cli("exec", "b1", "--", "ping", "-c", "1", "-W", "2", "nap1", check=False).returncode == 0
    finally:
        lab.cli("rm", "-f", "nap1", check=False)


def test_a_container_that_exits_by_itself_loses_its_name(lab):
    lab.cli("run", "-d", "--name", "brief1", "--host", lab.hosts[0].name, "--network", "blue",
            BUSYBOX, "sh", "-c", "until [ -e /tmp/done ]; do sleep 0.1; done")
    try:
        assert lookup(lab, "b1", "brief1") == ip(lab, "brief1", "blue")
        lab.cli("exec", "brief1", "--", "touch", "/tmp/done")    # its command ends by itself
        waited = time.monotonic()
        while lab.cli("inspect", "-f", "{{.State.Status}}", "brief1").stdout.strip() == "running":
            assert time.monotonic() - waited < 20, "brief1 did not exit"
            time.sleep(0.2)
        assert lookup(lab, "b1", "brief1") is None
        assert lookup(lab, "a1", "brief1") is None
    finally:
        lab.cli("rm", "-f", "brief1", check=False)
