"""Docker on h1, podman on h2 and vxmesh's own container on h3, all on one vxmesh overlay.

The engines are the distributions' own (docker.io 20.10, podman 4.3 with its
CNI backend), each confined to its lab host (tests/helpers/engines.py); the
agents serve them the plug-in socket. Checked as a user would see it: pings
across hosts in every direction, the VNI on the fabric, `vxmesh ps` and
`network inspect`, the other hosts' kernels after `rm -f`, an agent killed
under running Docker containers, and addresses handed out in parallel by
every engine at once. Nothing of it may reach the root namespace: its
addresses, routes, nftables and ip_forward are compared before and after,
and every process, mount namespace and network namespace the engines made
must be gone.
"""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import lab_cli
from tests.helpers.engines import (PODMAN_CGROUP_PARENT, DockerDaemon, Podman, processes_in_mount_ns,
                                   root_namespace_state)
from tests.helpers.kernel_tables import kernel_entries
from tests.helpers.lab import lab_with_blue
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

DOCKER_NET = "vxnet"
SUBNET = "10.77.0.0/24"


class Engines:
    def __init__(self, lab, docker: DockerDaemon, podman: Podman):
        self.lab = lab
        self.docker = docker
        self.podman = podman
        self.podman_sandboxes: set[str] = set()

    def docker_run(self, name: str, network: str = DOCKER_NET) -> str:
        self.docker.docker("run", "-d", "--name", name, "--network", network, "busybox", "sleep", "3600")
        return self.docker_ip(name, network)

    def docker_ip(self, name: str, network: str = DOCKER_NET) -> str:
        networks = json.loads(self.docker.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}",
                                                 name).stdout)
        return networks[network]["IPAddress"]

    def podman_run(self, name: str, network: str = "blue") -> str:
        return self.podman_run_with(name, network=network)

    def podman_run_with(self, name: str, *options: str, network: str = "blue") -> str:
        self.podman.podman("run", "-d", "--name", name, "--network", network, *options, "busybox", "sleep", "3600")
        info = json.loads(self.podman.podman("inspect", name).stdout)[0]["NetworkSettings"]
        self.podman_sandboxes.add(info["SandboxKey"])
        return info["Networks"][network]["IPAddress"]

    def docker_pings(self, name: str, ip: str) -> bool:
        return self.docker.docker("exec", name, "ping", "-c", "1", "-W", "1", ip, check=False).returncode == 0

    def podman_pings(self, name: str, ip: str) -> bool:
        return self.podman.podman("exec", name, "ping", "-c", "1", "-W", "1", ip, check=False).returncode == 0


@pytest.fixture(scope="module")
def engines(busybox_archive):
    before = root_namespace_state()
    netns_before = set(os.listdir("/run/netns"))
    mount_namespaces: list[str] = []
    used: Engines | None = None
    with lab_with_blue(hosts=3, image=busybox_archive) as lab:
        prefix = lab.prefix
        docker = DockerDaemon(lab, lab.hosts[0])
        podman = Podman(lab, lab.hosts[1])
        try:
            docker.start()
            mount_namespaces.append(docker.mount_ns)
            docker.docker("load", "-i", str(busybox_archive))
            docker.docker("network", "create", "-d", "vxmesh", "--ipam-driver", "vxmesh", "--subnet", SUBNET,
                          "-o", "vxmesh.network=blue", DOCKER_NET)
            podman.start()
            podman.install_network("blue", "blue")
            podman.podman("load", "-i", str(busybox_archive))
            lab_cli.run(lab, "n3", 2)
            used = Engines(lab, docker, podman)
            yield used
        finally:
            podman.stop()
            docker.stop()
            mount_namespaces.append(docker.mount_ns)   # a restart made a new one
    # Nothing of the engines is left, and the root namespace is as it was.
    for ns in filter(None, mount_namespaces):
        assert processes_in_mount_ns(ns) == [], "processes left in dockerd's mount namespace"
    assert docker.container_pids() == [], "docker's containers left running"
    assert not glob.glob(f"/sys/fs/cgroup/*/{docker.cgroup_parent}"), "docker's cgroups left behind"
    assert not glob.glob(f"/sys/fs/cgroup/*/{PODMAN_CGROUP_PARENT}/libpod-*"), "podman's cgroups left behind"
    # (other labs on this machine come and go meanwhile: only this lab's count)
    left = {ns for ns in set(os.listdir("/run/netns")) - netns_before if prefix in ns}
    assert not left, f"network namespaces left behind: {sorted(left)}"
    if used is not None:
        assert not {path.rsplit("/", 1)[-1] for path in used.podman_sandboxes} & set(os.listdir("/run/netns"))
    assert root_namespace_state() == before


def test_docker_podman_and_native_containers_ping_each_other_across_hosts(engines):
    lab = engines.lab
    d1 = engines.docker_run("d1")
    p1 = engines.podman_run("p1")
    n3 = lab_cli.inspect(lab, "n3")["networks"]["blue"]["ip"]
    assert len({d1, p1, n3}) == 3 and all(ip.startswith("10.77.0.") for ip in (d1, p1, n3))
    wait_for(lambda: engines.docker_pings("d1", p1), 15, "docker d1 (h1) pings podman p1 (h2)")
    assert engines.docker_pings("d1", n3)
    assert engines.podman_pings("p1", d1) and engines.podman_pings("p1", n3)
    assert lab_cli.pings(lab, "n3", d1) and lab_cli.pings(lab, "n3", p1)

    # vxmesh shows them as the engines' endpoints, with the engines' container ids
    listed = {c["networks"]["blue"]["ip"]: c for c in lab_cli.containers(lab)}
    docker_id = engines.docker.docker("inspect", "-f", "{{.Id}}", "d1").stdout.strip()
    podman_id = engines.podman.podman("inspect", "-f", "{{.Id}}", "p1").stdout.strip()
    assert (listed[d1]["engine"], listed[d1]["engine_id"], listed[d1]["host"]) == ("docker", docker_id, lab.hosts[0].name)
    assert (listed[p1]["engine"], listed[p1]["engine_id"], listed[p1]["host"]) == ("cni", podman_id, lab.hosts[1].name)
    assert listed[d1]["state"] == listed[p1]["state"] == "running"
    ps = lab.cli("ps").stdout
    assert f"(docker {docker_id[:12]})" in ps and f"(cni {podman_id[:12]})" in ps
    endpoints = {e["ip"]: e for e in lab_cli.network(lab)["endpoints"]}
    assert (endpoints[d1]["engine"], endpoints[p1]["engine"], endpoints[n3]["engine"]) == ("docker", "cni", "")
    # vxmesh's own commands leave them to their engines
    refused = lab.cli("rm", "-f", listed[d1]["name"], check=False)
    assert refused.returncode != 0 and "use docker" in refused.stderr

    # their way out is vxmesh's gwbridge, masqueraded behind their host's address
    out = engines.docker.docker("exec", "d1", "nc", "-w", "5", lab.ext_ip, "8080").stdout.strip()
    assert out == f"hello {lab.hosts[0].underlay_ip}"
    out = engines.podman.podman("exec", "p1", "nc", "-w", "5", lab.ext_ip, "8080").stdout.strip()
    assert out == f"hello {lab.hosts[1].underlay_ip}"
    # libnetwork made no gateway bridge of its own, nor docker0, in h1's namespace
    links = json.loads(subprocess.run(["ip", "-n", lab.hosts[0].netns, "-j", "link"], capture_output=True,
                                      text=True, check=True).stdout)
    assert not {"docker_gwbridge", "docker0"} & {link["ifname"] for link in links}


FETCH = ("import sys, urllib.request\ntry: print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())\n"
         "except OSError as err: print('failed', err)")


def fetch_from_outside(lab, url: str) -> str:
    return subprocess.run(["ip", "netns", "exec", lab.ext_ns, sys.executable, "-c", FETCH, url],
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_published_ports_go_through_the_agents_firewall(engines, engine):
    lab = engines.lab
    port, host = (18080, lab.hosts[1]) if engine == "podman" else (18081, lab.hosts[0])
    run = engines.podman.podman if engine == "podman" else engines.docker.docker
    network = "blue" if engine == "podman" else DOCKER_NET
    run("run", "-d", "--name", f"{engine}-web", "--network", network, "-p", f"{port}:80", "busybox",
        "httpd", "-f", "-p", "80", "-h", "/var/www")
    url = f"http://{host.underlay_ip}:{port}/"
    wait_for(lambda: fetch_from_outside(lab, url) == "hello from the vxmesh busybox image", 15,
             f"the lab's outside reaches {engine}-web through {host.name}:{port}")
    kind = "cni" if engine == "podman" else "docker"
    published = [c["ports"] for c in lab_cli.containers(lab) if c["engine"] == kind and c["ports"]]
    assert published == [[f"0.0.0.0:{port}->80/tcp"]]
    run("rm", "-f", f"{engine}-web")
    wait_for(lambda: fetch_from_outside(lab, url).startswith("failed"), 15, "the port closed with the container")


def test_podman_aliases_resolve_from_other_hosts(engines):
    lab = engines.lab
    ip = engines.podman_run_with("papi", "--network-alias", "api-alias")
    def lookup() -> str | None:
        result = lab.cli("exec", "n3", "--", "nslookup", "-type=a", "api-alias", check=False)
        found = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("Address") and "#" not in line]
        return found[-1] if found else None
    wait_for(lambda: lookup() == ip, 15, "n3's resolver answers api-alias with papi's address")
    engines.podman.podman("rm", "-f", "papi")


def resolved(lab, container: str, name: str) -> str | None:
    """The address vxmesh container `container`'s resolver gives for `name`, or None."""
    result = lab.cli("exec", container, "--", "nslookup", "-type=a", name, check=False)
    # The answer's addresses follow its "Name:" line (the server's own come before).
    answer = result.stdout.partition("Name:")[2]
    found = [line.split()[-1] for line in answer.splitlines() if line.startswith("Address")]
    return found[-1] if found else None


def test_docker_container_names_resolve_from_other_hosts(engines):
    """libnetwork gives a remote driver no container name nor its --network-alias;
    h1's agent reads them from Docker's API once the container is known, so n3 (a
    vxmesh container on h3) finds the Docker container by its name and its alias,
    as a Docker container would on Docker's own network; and they go with the
    container."""
    lab = engines.lab
    engines.docker.docker("run", "-d", "--name", "dnamed", "--network", DOCKER_NET, "--network-alias", "dalias",
                          "busybox", "sleep", "3600")
    ip = engines.docker_ip("dnamed")
    wait_for(lambda: resolved(lab, "n3", "dnamed") == ip, 15, "n3's resolver answers dnamed with its address")
    assert resolved(lab, "n3", "dalias") == ip
    assert lab_cli.pings(lab, "n3", "dalias")
    engines.docker.docker("rm", "-f", "dnamed")
    wait_for(lambda: resolved(lab, "n3", "dnamed") is None and resolved(lab, "n3", "dalias") is None, 15,
             "dnamed's name and alias gone with it")


def test_fabric_capture_shows_the_vni_between_docker_and_podman(engines, tmp_path):
    from scapy.all import UDP, rdpcap
    from scapy.layers.vxlan import VXLAN

    lab = engines.lab
    d1, p1 = engines.docker_ip("d1"), engines.podman.podman(
        "inspect", "-f", "{{.NetworkSettings.Networks.blue.IPAddress}}", "p1").stdout.strip()
    pcap = tmp_path / "fabric.pcap"
    capture = subprocess.Popen(["ip", "netns", "exec", lab.hosts[1].netns, "tcpdump", "-i", "eth0", "-U",
                                "-c", "4", "-w", str(pcap), "udp", "port", "4789"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pcap.exists(), what="tcpdump to start")
        assert engines.docker.docker("exec", "d1", "ping", "-c", "3", "-W", "1", p1, check=False).returncode == 0
        capture.wait(timeout=10)
    finally:
        capture.kill()
    packets = [p for p in rdpcap(str(pcap)) if p.haslayer(VXLAN)]
    assert packets, "no VXLAN on the fabric between docker and podman"
    vni = lab_cli.network(lab)["vni"]
    assert {p[VXLAN].vni for p in packets} == {vni} and {p[UDP].dport for p in packets} == {4789}
    assert d1 != p1


def test_rm_f_takes_the_engines_containers_out_of_every_other_kernel(engines):
    lab = engines.lab
    d2 = engines.docker_run("d2")
    p2 = engines.podman_run("p2")
    ips = lambda host: {ip for _, ip, _ in kernel_entries(lab, host)}   # noqa: E731
    wait_for(lambda: {d2, p2} <= ips(2) and p2 in ips(0) and d2 in ips(1), 15,
             "every other host's kernel has d2 and p2")
    engines.docker.docker("rm", "-f", "d2")
    engines.podman.podman("rm", "-f", "p2")
    wait_for(lambda: not {d2, p2} & (ips(0) | ips(1) | ips(2)), 15, "d2 and p2 gone from every kernel")
    wait_for(lambda: not {d2, p2} & {e["ip"] for e in lab_cli.network(lab)["endpoints"]}, 15,
             "d2 and p2 gone from the network")
    assert not {d2, p2} & {c["networks"].get("blue", {}).get("ip") for c in lab_cli.containers(lab)}


def test_docker_keeps_its_network_while_the_agent_restarts(engines):
    lab = engines.lab
    n3 = lab_cli.inspect(lab, "n3")["networks"]["blue"]["ip"]
    d1 = engines.docker_ip("d1")
    lab.stop_agent(lab.hosts[0])
    assert engines.docker_pings("d1", n3), "d1 lost the overlay with its agent down"
    lab.start_agent(lab.hosts[0])
    assert engines.docker_pings("d1", n3) and lab_cli.pings(lab, "n3", d1)
    # the restarted plug-in serves connect and disconnect on a second network, made by Docker
    engines.docker.docker("network", "create", "-d", "vxmesh", "--ipam-driver", "vxmesh", "--subnet",
                          "10.78.0.0/24", "-o", "vxmesh.network=green", "vxgreen")
    assert lab_cli.network(lab, "green")["subnet"] == "10.78.0.0/24"
    engines.docker.docker("network", "connect", "vxgreen", "d1")
    green = engines.docker_ip("d1", "vxgreen")
    assert green.startswith("10.78.0.")
    lab_cli.run(lab, "g3", 2, "green")
    g3 = lab_cli.inspect(lab, "g3")["networks"]["green"]["ip"]
    wait_for(lambda: engines.docker_pings("d1", g3), 15, "d1 reaches g3 on green")
    engines.docker.docker("network", "disconnect", "vxgreen", "d1")
    assert green not in {e["ip"] for e in lab_cli.network(lab, "green")["endpoints"]}
    assert not engines.docker_pings("d1", g3)
    assert engines.docker_pings("d1", n3)


def test_docker_restarted_finds_its_network_served(engines):
    """dockerd stopped (its containers with it: Docker leaves their endpoints) and
    started again: the plug-in, which keeps nothing, serves its network as before."""
    lab = engines.lab
    n3 = lab_cli.inspect(lab, "n3")["networks"]["blue"]["ip"]
    before = {e["ip"] for e in lab_cli.network(lab)["endpoints"] if e["engine"] == "docker"}
    engines.docker.restart()
    wait_for(lambda: not before & {e["ip"] for e in lab_cli.network(lab)["endpoints"]}, 30,
             "the stopped containers' endpoints gone")
    engines.docker.docker("start", "d1")
    d1 = engines.docker_ip("d1")
    wait_for(lambda: engines.docker_pings("d1", n3), 15, "d1, started again, reaches n3")
    assert lab_cli.pings(lab, "n3", d1)


def test_every_engine_at_once_gets_distinct_addresses(engines):
    lab = engines.lab

    def docker(i: int) -> str:
        return engines.docker_run(f"dp{i}")

    def podman(i: int) -> str:
        return engines.podman_run(f"pp{i}")

    def native(i: int) -> str:
        return lab_cli.run(lab, f"np{i}", 2)["networks"]["blue"]["ip"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        jobs = ([pool.submit(docker, i) for i in range(20)] + [pool.submit(podman, i) for i in range(20)]
                + [pool.submit(native, i) for i in range(5)])
        ips = [job.result(timeout=600) for job in jobs]
    assert len(ips) == 45 and len(set(ips)) == 45, sorted(ips)
    assert set(ips) <= {e["ip"] for e in lab_cli.network(lab)["endpoints"]}


def test_bad_engine_requests_are_refused_by_name(engines):
    docker = engines.docker
    no_ipam = docker.docker("network", "create", "-d", "vxmesh", "-o", "vxmesh.network=blue", "--subnet",
                            SUBNET, "vxbad1", check=False)
    assert no_ipam.returncode != 0 and "--ipam-driver vxmesh" in no_ipam.stderr
    no_subnet = docker.docker("network", "create", "-d", "vxmesh", "--ipam-driver", "vxmesh", "vxbad2",
                              check=False)
    assert no_subnet.returncode != 0 and "--subnet" in no_subnet.stderr
    wrong = docker.docker("network", "create", "-d", "vxmesh", "--ipam-driver", "vxmesh", "--subnet",
                          "10.79.0.0/24", "-o", "vxmesh.network=blue", "vxbad3", check=False)
    assert wrong.returncode != 0 and SUBNET in wrong.stderr
    mac = docker.docker("run", "-d", "--name", "dmac", "--network", DOCKER_NET, "--mac-address",
                        "02:00:00:00:00:99", "busybox", "sleep", "3600", check=False)
    assert mac.returncode != 0 and "pins each address's MAC" in mac.stderr
    docker.docker("rm", "-f", "dmac", check=False)
    ghost = engines.podman.podman("run", "-d", "--name", "pghost", "--network", "nosuch", "busybox", "true",
                                  check=False)
    assert ghost.returncode != 0


def test_endpoints_of_a_dead_docker_are_reclaimed(engines):
    """Last in the module: dockerd and all its containers killed, nothing told the
    plug-in; the agent finds their namespaces empty and removes the endpoints."""
    lab = engines.lab
    docker_ips = {e["ip"] for e in lab_cli.network(lab)["endpoints"] if e["engine"] == "docker"}
    assert docker_ips
    engines.docker.kill()
    wait_for(lambda: not docker_ips & {e["ip"] for e in lab_cli.network(lab)["endpoints"]}, 90,
             "the dead engine's endpoints reclaimed")
    wait_for(lambda: not docker_ips & {ip for _, ip, _ in kernel_entries(lab, 2)}, 15,
             "the dead engine's endpoints gone from h3's kernel")
    # the podman and native containers are untouched
    assert lab_cli.pings(lab, "n3", engines.podman.podman(
        "inspect", "-f", "{{.NetworkSettings.Networks.blue.IPAddress}}", "p1").stdout.strip())
