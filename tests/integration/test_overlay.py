"""End to end: a 3-host lab, containers on every host, real packets across VXLAN.

One lab serves the whole module (building it costs seconds); each test makes
its own containers and networks with distinct names.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from deploy.lab import Lab
from tests.helpers.images import BUSYBOX
from tests.helpers.kernel_tables import OverlayTable, overlay_table
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect, network, run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=3, image=busybox_archive) as lab:
        yield lab


def ping(lab: Lab, source: str, ip: str, count: int = 1) -> subprocess.CompletedProcess:
    return lab.cli("exec", source, "--", "ping", "-c", str(count), "-W", "2", ip, check=False)


def blue_table(lab: Lab, host: int) -> OverlayTable:
    return overlay_table(lab, host, network(lab)["vni"])


def test_hosts_register_and_are_up(lab):
    hosts = json.loads(lab.cli("host", "ls", "--format", "json").stdout)
    assert sorted(h["name"] for h in hosts) == sorted(h.name for h in lab.hosts)
    assert {h["state"] for h in hosts} == {"up"}
    assert {h["vtep"] for h in hosts} == {h.underlay_ip for h in lab.hosts}


def test_every_pair_pings_across_hosts(lab):
    names = ["m1", "m2", "m3"]
    info = {n: run(lab, n, i) for i, n in enumerate(names)}
    for n in names:
        assert info[n]["state"] == "running"
        assert info[n]["host"] == lab.hosts[names.index(n)].name
    for src in names:
        for dst in names:
            if src != dst:
                result = ping(lab, src, info[dst]["networks"]["blue"]["ip"])
                assert result.returncode == 0, f"{src} -> {dst}: {result.stdout}{result.stderr}"
    # The container side of the veth carries underlay MTU - 50.
    mtu = lab.cli("exec", "m1", "--", "cat", "/sys/class/net/eth0/mtu").stdout.strip()
    assert mtu == "1450"


def test_container_started_later_becomes_reachable_and_removal_cleans_tables(lab):
    run(lab, "late1", 0)
    late = run(lab, "late3", 2)
    ip, mac = late["networks"]["blue"]["ip"], late["networks"]["blue"]["mac"]
    assert ping(lab, "late1", ip).returncode == 0

    table = blue_table(lab, 0)
    assert (mac, lab.hosts[2].underlay_ip) in table.fdb
    assert ip in table.neighbours and "PERMANENT" in table.neighbours[ip].state
    tables = lab.cli("tables", lab.hosts[0].name, "--network", "blue").stdout
    assert mac in tables and ip in tables

    lab.cli("rm", "-f", "late3")

    def gone():
        table = blue_table(lab, 0)
        return mac not in table.macs() and ip not in table.neighbours
    wait_for(gone, what="h1 to drop the removed container's FDB and neighbour entries")
    assert ping(lab, "late1", ip).returncode != 0


def bridge_entries(lab: Lab, host: int, vni: int, mac: str) -> list[dict]:
    """The `master br0` entries (the bridge's own, not the VXLAN device's) for `mac`."""
    out = lab.netns_exec(f"vxm-{lab.hosts[host].name}-ov{vni}", "bridge", "-j", "fdb", "show", "br", "br0").stdout
    return [e for e in json.loads(out or "[]") if e["mac"] == mac and "self" not in e.get("flags", [])]


def test_an_address_reused_on_another_host_is_reachable_at_once(lab):
    """A container gets the address (and so the MAC) a container on another host
    had: while that one answered pings from h3, h3's bridge learned its MAC on the
    VXLAN port. The new owner, on h3, must answer h1 at once, not once that
    learned entry ages out (minutes): its port holds its MAC (a static entry),
    whatever the bridge learned before."""
    lab.cli("network", "create", "--subnet", "10.78.0.0/24", "reuse")
    vni = network(lab, "reuse")["vni"]
    ip = "10.78.0.50"
    run(lab, "ru-src", 0, "reuse")
    run(lab, "ru-peer", 2, "reuse")
    lab.cli("run", "-d", "--name", "ru-old", "--host", lab.hosts[1].name, "--network", "reuse", "--ip", ip,
            BUSYBOX, "sleep", "3600")
    mac = inspect(lab, "ru-old")["networks"]["reuse"]["mac"]
    assert ping(lab, "ru-peer", ip).returncode == 0
    # The precondition: h3's bridge learned the old owner's MAC on its VXLAN port.
    assert [e["ifname"] for e in bridge_entries(lab, 2, vni, mac)] == [f"vx{vni}"]
    lab.cli("rm", "-f", "ru-old")
    lab.cli("run", "-d", "--name", "ru-new", "--host", lab.hosts[2].name, "--network", "reuse", "--ip", ip,
            BUSYBOX, "sleep", "3600")
    assert inspect(lab, "ru-new")["networks"]["reuse"]["mac"] == mac
    # h1's table follows the move within a pass; the answer must come then, not minutes later.
    wait_for(lambda: ping(lab, "ru-src", ip).returncode == 0, 10, f"ru-new at {ip} answering h1")
    [entry] = bridge_entries(lab, 2, vni, mac)
    assert entry["ifname"] != f"vx{vni}" and entry["state"] == "static", entry
    for name in ("ru-src", "ru-peer", "ru-new"):
        lab.cli("rm", "-f", name)
    lab.cli("network", "rm", "reuse")


def test_two_overlay_networks_are_isolated(lab):
    lab.cli("network", "create", "--subnet", "10.78.0.0/24", "red")
    run(lab, "iso-blue", 0, "blue")
    red_other = run(lab, "iso-red2", 1, "red")
    red_same = run(lab, "iso-red1", 0, "red")
    assert ping(lab, "iso-red1", red_other["networks"]["red"]["ip"]).returncode == 0
    assert ping(lab, "iso-blue", red_other["networks"]["red"]["ip"]).returncode != 0
    assert ping(lab, "iso-blue", red_same["networks"]["red"]["ip"]).returncode != 0
    # Removing a network in use is refused with a clear message.
    refused = lab.cli("network", "rm", "red", check=False)
    assert refused.returncode != 0 and "iso-red" in refused.stderr and "Traceback" not in refused.stderr


def test_overlay_container_reaches_ext_through_gwbridge_nat(lab):
    run(lab, "egress", 1)
    out = lab.cli("exec", "egress", "--", "nc", "-w", "5", lab.ext_ip, "8080").stdout.strip()
    # The server sees the host's underlay address: the container was masqueraded.
    assert out == f"hello {lab.hosts[1].underlay_ip}"


def test_underlay_capture_shows_vxlan_with_the_vni_and_container_macs(lab, tmp_path):
    from scapy.all import UDP, Ether, rdpcap
    from scapy.layers.vxlan import VXLAN

    a = run(lab, "cap1", 0)
    b = run(lab, "cap2", 1)
    pcap = tmp_path / "underlay.pcap"
    capture = subprocess.Popen(["ip", "netns", "exec", lab.hosts[1].netns, "tcpdump", "-i", "eth0", "-U",
                                "-c", "4", "-w", str(pcap), "udp", "port", "4789"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pcap.exists(), what="tcpdump to start")
        assert ping(lab, "cap1", b["networks"]["blue"]["ip"], count=3).returncode == 0
        capture.wait(timeout=10)
    finally:
        capture.kill()
    packets = [p for p in rdpcap(str(pcap)) if p.haslayer(VXLAN)]
    assert packets, "no VXLAN packet captured on the underlay"
    macs = {a["networks"]["blue"]["mac"], b["networks"]["blue"]["mac"]}
    for packet in packets:
        assert packet[UDP].dport == 4789
        assert packet[VXLAN].vni == network(lab)["vni"]
        inner = packet[VXLAN].payload
        assert isinstance(inner, Ether) and {inner.src, inner.dst} == macs


def test_network_create_rejects_bad_input_and_changes_nothing(lab):
    before = lab.cli("network", "ls").stdout
    vni = network(lab)["vni"]
    cases = {
        ("--subnet", "10.300.0.0/24", "bad1"): "10.300.0.0/24",
        ("--subnet", "10.77.0.128/25", "bad2"): "blue",
        ("--subnet", "10.90.0.0/24", "--vni", str(vni), "bad3"): str(vni),
        ("--subnet", "10.91.0.0/24", "blue"): "blue",
        ("--subnet", "10.92.0.0/24", "--gateway", "10.93.0.1", "bad4"): "10.93.0.1",
    }
    for args, named in cases.items():
        result = lab.cli("network", "create", *args, check=False)
        assert result.returncode != 0, args
        assert named in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert lab.cli("network", "ls").stdout == before


def test_exec_logs_stop_and_ps(lab):
    # PID 1 of its namespace: it must handle SIGTERM itself to stop on it (as in Docker).
    run(lab, "chatty", 2, "blue", "sh", "-c", "trap 'exit 0' TERM; echo hello from $(hostname); sleep 3600 & wait")
    wait_for(lambda: "hello from chatty" in lab.cli("logs", "chatty").stdout, what="the log line")
    result = lab.cli("exec", "chatty", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert "chatty" in lab.cli("ps").stdout
    lab.cli("stop", "chatty")
    assert inspect(lab, "chatty")["state"] == "exited"
    assert "chatty" not in lab.cli("ps").stdout and "chatty" in lab.cli("ps", "-a").stdout
    refused = lab.cli("run", "-d", "--name", "chatty", "--network", "blue", BUSYBOX, "true", check=False)
    assert refused.returncode != 0 and "chatty" in refused.stderr
    lab.cli("rm", "chatty")
    missing = lab.cli("inspect", "chatty", check=False)
    assert missing.returncode != 0 and "chatty" in missing.stderr


def test_containers_keep_running_and_talking_across_an_agent_restart(lab):
    a = run(lab, "sv1", 0)
    b = run(lab, "sv2", 1)
    lab.stop_agent(lab.hosts[1])  # kill -9 of the agent; its containers stay
    assert ping(lab, "sv1", b["networks"]["blue"]["ip"]).returncode == 0
    lab.start_agent(lab.hosts[1])
    after = inspect(lab, "sv2")
    assert (after["state"], after["pid"]) == ("running", b["pid"])
    assert ping(lab, "sv2", a["networks"]["blue"]["ip"]).returncode == 0
    assert blue_table(lab, 1).macs().count(a["networks"]["blue"]["mac"]) == 1  # rebuilt, not duplicated


def test_state_survives_a_controller_restart(lab):
    run(lab, "cr1", 0)
    lab.stop_controller()
    lab.start_controller()
    lab.wait_hosts_up()
    assert inspect(lab, "cr1")["state"] == "running"   # kept in etcd
    late = run(lab, "cr3", 2)            # agents resumed their streams
    assert ping(lab, "cr1", late["networks"]["blue"]["ip"]).returncode == 0
