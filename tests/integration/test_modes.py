"""End to end: Docker's network modes, published ports and the container
lifecycle, driven through the CLI in a 2-host namespace lab.

One lab serves the module; each test uses its own container and network names.
Containers run the busybox image: servers are busybox's `nc`, and what a
container's network namespace holds is read with the host's `ip -j`, entered
through the container's PID (busybox's `ip` has no JSON).
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.lab import Lab
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect, pings
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

# A TCP server, in busybox, that answers every connection with the container's hostname.
SERVER = ("sh", "-c", 'exec nc -ll -p "${PORT:-80}" -e hostname')
# busybox's nc speaks no UDP: this one runs on the host, inside the container's
# network namespace, and answers with the name it is given.
UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 53))
while True:
    data, peer = s.recvfrom(100); s.sendto(sys.argv[1].encode(), peer)
"""
# From outside the containers (the lab's namespaces run the host's python).
CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print(s.recv(100).decode().strip())
"""
UDP_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b'?', (sys.argv[1], int(sys.argv[2]))); print(s.recv(100).decode().strip())
"""


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=2, image=busybox_archive) as lab:
        yield lab


def run(lab: Lab, name: str, *options: str, cmd: tuple[str, ...] = ("sleep", "3600"),
        host: int | None = 0) -> dict:
    placement = () if host is None else ("--host", lab.hosts[host].name)
    lab.cli("run", "-d", "--name", name, *placement, *options, BUSYBOX, *cmd)
    return inspect(lab, name)


def exec_(lab: Lab, name: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return lab.cli("exec", name, "--", *cmd, check=check)


def in_container_netns(lab: Lab, name: str, *argv: str) -> list[str]:
    """`argv` run on the host in the network namespace of container `name` (by its PID)."""
    return ["nsenter", f"--target={inspect(lab, name)['pid']}", "--net", *argv]


def ip_addresses(lab: Lab, name: str) -> dict[str, list[str]]:
    out = json.loads(subprocess.run(in_container_netns(lab, name, "ip", "-j", "addr"), capture_output=True,
                                    text=True, check=True).stdout)
    return {i["ifname"]: [a["local"] for a in i.get("addr_info", []) if a["family"] == "inet"] for i in out}


def nc(lab: Lab, name: str, ip: str, port: int | str, check: bool = True) -> subprocess.CompletedProcess:
    """busybox's nc in container `name`: what the server at ip:port says."""
    return exec_(lab, name, "nc", "-w", "3", ip, str(port), check=check)


def connect(lab: Lab, netns: str, ip: str, port: int, udp: bool = False) -> str:
    result = lab.netns_exec(netns, "python3", "-c", UDP_CLIENT if udp else CLIENT, ip, port, check=False)
    return result.stdout.strip() if result.returncode == 0 else f"failed: {result.stderr.strip()[-200:]}"


def refused(lab: Lab, *args: str) -> str:
    result = lab.cli(*args, check=False)
    assert result.returncode != 0, f"{args} was accepted: {result.stdout}"
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


# ---- network modes -------------------------------------------------------------

def test_default_bridge_reaches_its_host_neighbours_and_the_outside_only(lab):
    a = run(lab, "br-a")
    b = run(lab, "br-b")
    other1 = run(lab, "br-x", host=1)
    other2 = run(lab, "br-y", host=1)
    assert a["networks"]["bridge"]["ip"] == "172.17.0.2" and b["networks"]["bridge"]["ip"] == "172.17.0.3"
    assert other2["networks"]["bridge"]["ip"] == "172.17.0.3"  # each host has its own bridge
    assert pings(lab, "br-a", b["networks"]["bridge"]["ip"])
    assert pings(lab, "br-x", other2["networks"]["bridge"]["ip"])
    # 172.17.0.4 exists nowhere on h1; h2's containers are not reachable from h1's bridge.
    run(lab, "br-z", host=1)
    assert not pings(lab, "br-a", "172.17.0.4")
    out = nc(lab, "br-a", lab.ext_ip, 8080).stdout.strip()
    assert out == f"hello {lab.hosts[0].underlay_ip}"   # masqueraded egress
    route = exec_(lab, "br-a", "ip", "route", "show", "default").stdout
    assert "via 172.17.0.1 dev eth0" in route
    assert other1["state"] == "running"


def test_host_mode_shares_the_hosts_network(lab):
    run(lab, "hostnet", "--network", "host", "-e", "PORT=7070", cmd=SERVER)
    assert lab.hosts[0].underlay_ip in sum(ip_addresses(lab, "hostnet").values(), [])
    wait_for(lambda: connect(lab, lab.ext_ns, lab.hosts[0].underlay_ip, 7070) == "hostnet",
             what="the host-mode server to answer from ext")
    assert exec_(lab, "hostnet", "hostname").stdout.strip() == "hostnet"   # own UTS namespace
    assert "hostnet" in lab.cli("ps").stdout and "host" in lab.cli("ps").stdout


def test_none_mode_has_only_loopback(lab):
    run(lab, "nonet", "--network", "none")
    assert ip_addresses(lab, "nonet") == {"lo": ["127.0.0.1"]}


def test_container_mode_shares_another_containers_namespace(lab):
    web = run(lab, "owner", "-e", "PORT=9000", cmd=SERVER)
    run(lab, "sidecar", "--network", "container:owner", host=None)   # placed with its owner
    side = inspect(lab, "sidecar")
    assert side["host"] == web["host"] and side["network_mode"] == "container:owner"
    assert ip_addresses(lab, "sidecar") == ip_addresses(lab, "owner")
    assert wait_for(lambda: nc(lab, "sidecar", "127.0.0.1", 9000, check=False).stdout.strip(),
                    what="localhost between them") == "owner"
    assert "runs on host" in refused(lab, "run", "--name", "far", "--host", lab.hosts[1].name,
                                     "--network", "container:owner", BUSYBOX, "sleep", "1")
    assert "no such container 'ghost'" in refused(lab, "run", "--name", "far", "--network",
                                                  "container:ghost", BUSYBOX, "sleep", "1")
    # Docker: stopping the owner leaves the sharer running with only lo.
    lab.cli("stop", "-t", "1", "owner")
    assert inspect(lab, "sidecar")["state"] == "running"
    assert wait_for(lambda: ip_addresses(lab, "sidecar") == {"lo": ["127.0.0.1"]}, what="owner's interfaces gone")
    assert "not running" in refused(lab, "run", "--name", "late", "--network", "container:owner",
                                    BUSYBOX, "sleep", "1")
    lab.cli("rm", "-f", "sidecar")


def test_user_bridge_networks_are_isolated_from_each_other(lab):
    lab.cli("network", "create", "--driver", "bridge", "--subnet", "10.50.0.0/24", "lan-a")
    lab.cli("network", "create", "-d", "bridge", "--subnet", "10.51.0.0/24", "lan-b")
    a1 = run(lab, "la1", "--network", "lan-a")
    a2 = run(lab, "la2", "--network", "lan-a")
    b1 = run(lab, "lb1", "--network", "lan-b")
    run(lab, "lo1")  # default bridge
    assert pings(lab, "la1", a2["networks"]["lan-a"]["ip"])
    assert not pings(lab, "la1", b1["networks"]["lan-b"]["ip"])
    assert not pings(lab, "lo1", a1["networks"]["lan-a"]["ip"])
    assert pings(lab, "la1", "10.50.0.1")
    ls = lab.cli("network", "ls").stdout
    assert "lan-a" in ls and "bridge" in ls and "local" in ls
    for name in ("la1", "la2", "lb1"):
        lab.cli("rm", "-f", name)
    lab.cli("network", "rm", "lan-b")
    # The unused bridge leaves the host.
    wait_for(lambda: "vxb" not in subprocess.run(
        ["ip", "netns", "exec", lab.hosts[0].netns, "ip", "-o", "link", "show", "type", "bridge"],
        capture_output=True, text=True).stdout, what="the lan bridges to be removed")
    assert "pre-defined" in refused(lab, "network", "rm", "bridge")


def test_connect_and_disconnect_a_running_container(lab):
    lab.cli("network", "create", "--subnet", "10.78.0.0/24", "red")
    c = run(lab, "multi", "--network", "blue")
    d = run(lab, "peer", "--network", "red", host=1)
    d_ip = d["networks"]["red"]["ip"]
    assert not pings(lab, "multi", d_ip)
    lab.cli("network", "connect", "red", "multi")
    c_ip = inspect(lab, "multi")["networks"]["red"]["ip"]
    assert set(ip_addresses(lab, "multi")) == {"lo", "eth0", "eth1", "eth2"}  # blue, gwbridge, red
    # h2 learns of the new endpoint through its stream, a moment later.
    wait_for(lambda: pings(lab, "multi", d_ip), what="multi to reach peer over red")
    assert c_ip in lab.cli("tables", lab.hosts[1].name, "--network", "red").stdout   # the other host follows
    lab.cli("network", "disconnect", "red", "multi")
    assert "eth2" not in ip_addresses(lab, "multi")
    assert not pings(lab, "multi", d_ip)
    wait_for(lambda: c_ip not in lab.cli("tables", lab.hosts[1].name, "--network", "red").stdout,
             what="h2 to drop the disconnected endpoint")
    assert ip_addresses(lab, "multi")["eth0"] == [c["networks"]["blue"]["ip"]]


def test_run_with_two_networks(lab):
    lab.cli("network", "create", "--subnet", "10.79.0.0/24", "green")
    two = run(lab, "two", "--network", "blue", "--network", "green")
    addresses = ip_addresses(lab, "two")
    assert addresses["eth0"] == [two["networks"]["blue"]["ip"]]
    assert addresses["eth1"] == [two["networks"]["green"]["ip"]]


# ---- published ports ---------------------------------------------------------------

def test_published_port_on_overlay_container_from_outside_and_from_the_host(lab):
    run(lab, "web", "--network", "blue", "-p", "8080:80", cmd=SERVER, host=1)
    host = lab.hosts[1]
    assert wait_for(lambda: connect(lab, lab.ext_ns, host.underlay_ip, 8080) == "web",
                    what="ext to reach web through 8080")
    assert connect(lab, host.netns, host.underlay_ip, 8080) == "web"
    assert connect(lab, host.netns, "127.0.0.1", 8080) == "web"
    assert "0.0.0.0:8080->80/tcp" in lab.cli("ps").stdout
    assert "already published by container 'web'" in refused(
        lab, "run", "--name", "web2", "--host", host.name, "-p", "8080:80", BUSYBOX, "sleep", "1")
    lab.cli("rm", "-f", "web")
    assert connect(lab, lab.ext_ns, host.underlay_ip, 8080).startswith("failed")


def test_random_host_port_and_udp_on_bridge_container(lab):
    info = run(lab, "dns", "-p", "53/udp", "-p", "80", "-e", "PORT=80", cmd=SERVER)
    ports = {p.split("->")[1]: int(p.split("->")[0].rsplit(":", 1)[1]) for p in info["ports"]}
    assert set(ports) == {"53/udp", "80/tcp"} and all(p >= 32768 for p in ports.values())
    ip = lab.hosts[0].underlay_ip
    assert wait_for(lambda: connect(lab, lab.ext_ns, ip, ports["80/tcp"]) == "dns", what="tcp")
    udp = subprocess.Popen(in_container_netns(lab, "dns", sys.executable, "-c", UDP_SERVER, "dns"))
    try:
        assert wait_for(lambda: connect(lab, lab.ext_ns, ip, ports["53/udp"], udp=True) == "dns", what="udp")
    finally:
        udp.kill()
        udp.wait()


# ---- lifecycle ------------------------------------------------------------------------

def test_stop_kills_a_process_that_ignores_sigterm_within_the_timeout(lab):
    run(lab, "stubborn", cmd=("sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"))
    started = time.monotonic()
    lab.cli("stop", "-t", "2", "stubborn")
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 6.0, elapsed
    info = inspect(lab, "stubborn")
    assert (info["state"], info["exit_code"]) == ("exited", 137)
    assert "Exited (137)" in lab.cli("ps", "-a").stdout


# As in Docker (without --init), the container's command is PID 1 of its PID
# namespace, which the kernel spares every signal it has no handler for: a
# command that is to die on SIGTERM handles it.
DIES_ON_TERM = ("sh", "-c", "trap 'exit 143' TERM; sleep 3600 & wait")


def test_kill_start_and_rm(lab):
    first = run(lab, "cycle", cmd=DIES_ON_TERM)
    lab.cli("kill", "-s", "TERM", "cycle")
    wait_for(lambda: inspect(lab, "cycle")["state"] == "exited", what="cycle to exit")
    assert inspect(lab, "cycle")["exit_code"] == 143
    assert "not running" in refused(lab, "kill", "cycle")
    lab.cli("start", "cycle")
    again = inspect(lab, "cycle")
    assert again["state"] == "running" and again["pid"] != first["pid"]
    assert again["networks"] == first["networks"]            # same addresses
    assert ip_addresses(lab, "cycle")["eth0"] == [first["networks"]["bridge"]["ip"]]
    assert "stop it first or use rm -f" in refused(lab, "rm", "cycle")
    lab.cli("kill", "cycle")
    wait_for(lambda: inspect(lab, "cycle")["exit_code"] == 137, what="SIGKILL exit code")
    lab.cli("rm", "cycle")


# ---- limits, rootfs, binds ------------------------------------------------------------

def _cgroup_files(lab: Lab, container_id: str) -> dict[str, Path]:
    parent = f"vxmesh-{lab.hosts[0].name}"
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v2
        base = Path("/sys/fs/cgroup") / parent / container_id
        return {"memory": base / "memory.max", "cpu": base / "cpu.max", "pids": base / "pids.max"}
    return {"memory": Path("/sys/fs/cgroup/memory") / parent / container_id / "memory.limit_in_bytes",
            "cpu": Path("/sys/fs/cgroup/cpu") / parent / container_id / "cpu.cfs_quota_us",
            "pids": Path("/sys/fs/cgroup/pids") / parent / container_id / "pids.max"}


def test_resource_limits(lab):
    info = run(lab, "limited", "--memory", "32m", "--cpus", "0.5", "--pids-limit", "20")
    files = _cgroup_files(lab, info["id"])
    values = {k: f.read_text().split()[0] for k, f in files.items()}
    assert values["memory"] == str(32 << 20) and values["pids"] == "20"
    assert values["cpu"] == "50000"
    # dd holds one 200 MiB block in memory.
    hog = run(lab, "hog", "--memory", "32m", cmd=("dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"))
    wait_for(lambda: inspect(lab, "hog")["state"] == "exited", what="the memory hog to die")
    assert (inspect(lab, "hog")["exit_code"], inspect(lab, "hog")["oom_killed"]) == (137, True)
    lab.cli("rm", "-f", "limited")
    lab.cli("rm", "hog")
    assert not files["memory"].parent.exists()
    assert not _cgroup_files(lab, hog["id"])["memory"].parent.exists()


@pytest.fixture
def data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("from the host\n")
    return data


def test_the_images_root_and_bind_mounts(lab, data):
    run(lab, "tiny", "-v", f"{data}:/data:ro", "-v", f"{data}:/rw",
        cmd=("/bin/sh", "-c", "echo written > /rw/out.txt; sleep 3600"))
    listing = exec_(lab, "tiny", "ls", "/").stdout.split()
    # The image's root (busybox's /var/www), not the host's (no /opt, no /work, no python3).
    assert {"bin", "etc", "var"} <= set(listing) and "opt" not in listing and "work" not in listing
    assert exec_(lab, "tiny", "cat", "/var/www/index.html").stdout == "hello from the vxmesh busybox image\n"
    assert exec_(lab, "tiny", "which", "python3", check=False).returncode != 0
    assert exec_(lab, "tiny", "cat", "/data/hello.txt").stdout == "from the host\n"
    denied = exec_(lab, "tiny", "sh", "-c", "echo x > /data/new.txt", check=False)
    assert denied.returncode != 0 and "Read-only" in denied.stderr
    wait_for(lambda: (data / "out.txt").exists(), what="the rw bind to show the write")
    assert exec_(lab, "tiny", "ps").stdout.count("\n") <= 6   # its own /proc: only its processes
    assert "eth0" in exec_(lab, "tiny", "ls", "/sys/class/net").stdout.split()
    lab.cli("rm", "-f", "tiny")
    # A bind whose source is missing fails the start, naming it (as Docker, the container stays).
    assert "/nonexistent-vxmesh does not exist" in refused(
        lab, "run", "--name", "nofs", "--host", lab.hosts[0].name, "-v", "/nonexistent-vxmesh:/data",
        BUSYBOX, "sh")
    lab.cli("rm", "-f", "nofs")


# ---- cleanup ------------------------------------------------------------------------

def _host_leftovers(lab: Lab, host: int, container_id: str) -> list[str]:
    h = lab.hosts[host]
    found = []
    links = subprocess.run(["ip", "netns", "exec", h.netns, "ip", "-o", "link"], capture_output=True,
                           text=True).stdout
    found += [f"link {w}" for w in (f"vb{container_id[:10]}", f"gw{container_id[:10]}") if w in links]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if f"c{container_id[:12]}" in netns:
        found.append("netns")
    rules = subprocess.run(["ip", "netns", "exec", h.netns, "nft", "list", "ruleset"], capture_output=True,
                           text=True).stdout
    if "dport 8181" in rules:
        found.append("nft rule")
    if _cgroup_files(lab, container_id)["memory"].parent.exists():
        found.append("cgroup")
    # The bundle, the writable layer, crun's state and the local record.
    if list(Path("/run/vxmesh", h.name).glob(f"**/{container_id}*")):
        found.append("state dir")
    # The overlay root lives in a mount namespace of the container's own.
    if any(container_id in _mountinfo(pid) for pid in Path("/proc").iterdir() if pid.name.isdigit()):
        found.append("overlay mount")
    return found


def _mountinfo(pid: Path) -> str:
    with contextlib.suppress(OSError):
        return (pid / "mountinfo").read_text()
    return ""


def test_rm_removes_everything_also_across_an_agent_restart(lab):
    a = run(lab, "gone1", "-p", "8181:80", "--memory", "64m")
    present = _host_leftovers(lab, 0, a["id"])
    assert {"netns", "nft rule", "cgroup", "state dir", "overlay mount"} <= set(present), present
    lab.cli("rm", "-f", "gone1")
    assert _host_leftovers(lab, 0, a["id"]) == []
    b = run(lab, "gone2", "-p", "8181:80", "--network", "blue", "--memory", "64m")
    lab.stop_agent(lab.hosts[0])
    lab.cli("rm", "-f", "gone2", check=False, timeout=60)   # the agent is down: nothing confirms yet
    lab.start_agent(lab.hosts[0])
    wait_for(lambda: _host_leftovers(lab, 0, b["id"]) == [], timeout=30, what="the restarted agent to clean up")
