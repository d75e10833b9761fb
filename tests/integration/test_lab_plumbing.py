"""The lab's underlay, ext server and lifecycle, without the vxmesh programs."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import lab as lab_module
from deploy.ext_server import greet
from deploy.lab import CONTROLLER_IP, EXT_PORT, Lab, LabError, LabExists
from deploy.lab_processes import REPO_ROOT, is_alive
from deploy.topology import list_netns
from tests.helpers.lab import new_test_prefix

# Reads one line from a TCP server; run inside a lab namespace.
READ_LINE = ("import socket, sys\n"
             "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
             "print(s.makefile().readline(), end='')\n")


def fetch_greeting(lab: Lab, netns: str) -> str:
    return lab.netns_exec(netns, sys.executable, "-c", READ_LINE, lab.ext_ip, str(EXT_PORT)).stdout


def owned_netns(prefix: str) -> list[str]:
    return [ns for ns in list_netns() if ns.startswith(f"{prefix}-") or ns.startswith(f"vxm-{prefix}-")]


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m deploy.lab` in a fresh process, as `make lab-down` runs it."""
    return subprocess.run([sys.executable, "-m", "deploy.lab", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def eth0(lab: Lab, netns: str) -> dict:
    return json.loads(lab.netns_exec(netns, "ip", "-j", "addr", "show", "eth0").stdout)[0]


# ---- without root ----------------------------------------------------------

@pytest.mark.parametrize("prefix", ["", "x", "Vxlab", "vx-lab", "1lab", "h1", "h12", "vxm", "waytoolongprefix"])
def test_prefixes_that_would_collide_or_break_names_are_refused(prefix, tmp_path):
    with pytest.raises(ValueError, match="prefix"):
        Lab(prefix, state_root=tmp_path)


def test_host_count_mtu_and_socket_path_are_checked(tmp_path):
    with pytest.raises(ValueError, match="hosts"):
        Lab("vxtab", hosts=0, state_root=tmp_path)
    with pytest.raises(ValueError, match="MTU"):
        Lab("vxtab", underlay_mtu=100, state_root=tmp_path)
    with pytest.raises(ValueError, match="socket path"):
        Lab("vxtab", state_root=tmp_path / ("d" * 100))


def test_make_lab_names_its_agents_h1_and_test_labs_after_their_prefix(tmp_path):
    default = Lab("vxlab", hosts=2, state_root=tmp_path)
    assert [(h.name, h.netns, h.underlay_ip, h.api) for h in default.hosts] == [
        ("h1", "vxlab-h1", "10.231.0.11", "10.231.0.11:7947"),
        ("h2", "vxlab-h2", "10.231.0.12", "10.231.0.12:7947"),
    ]
    other = Lab("vxt9f3c", hosts=3, state_root=tmp_path)
    assert [h.name for h in other.hosts] == ["vxt9f3c-h1", "vxt9f3c-h2", "vxt9f3c-h3"]
    assert other.hosts[2].underlay_ip == "10.231.0.13"
    assert other.controller_socket == str(tmp_path / "vxt9f3c" / "controller.sock")


async def test_ext_server_greets_each_client_with_its_address():
    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for _ in range(2):  # one line per connection, then closed
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await reader.read() == b"hello 127.0.0.1\n"
            writer.close()
            await writer.wait_closed()


# ---- with root: real namespaces --------------------------------------------

@pytest.mark.integration
def test_every_node_reaches_every_other_over_the_fabric(make_lab):
    lab = make_lab(hosts=3, start_vxmesh=False)
    nodes = [(lab.ctl_ns, CONTROLLER_IP), (lab.ext_ns, lab.ext_ip)]
    nodes += [(h.netns, h.underlay_ip) for h in lab.hosts]
    for src_ns, src_ip in nodes:
        uplink = eth0(lab, src_ns)
        assert uplink["mtu"] == 1500 and "UP" in uplink["flags"]
        assert [a["local"] for a in uplink["addr_info"] if a["family"] == "inet"] == [src_ip]
        for _, dst_ip in nodes:
            if dst_ip != src_ip:
                lab.netns_exec(src_ns, "ping", "-c1", "-W2", dst_ip)
    root_addresses = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    assert "10.231.0." not in root_addresses


@pytest.mark.integration
def test_ext_server_reports_the_source_address_it_saw(make_lab):
    lab = make_lab(hosts=2, start_vxmesh=False)
    h1, h2 = lab.hosts
    assert fetch_greeting(lab, h2.netns) == f"hello {h2.underlay_ip}\n"
    assert fetch_greeting(lab, h1.netns) == f"hello {h1.underlay_ip}\n"


@pytest.mark.integration
def test_underlay_mtu_is_configurable(make_lab):
    lab = make_lab(hosts=1, start_vxmesh=False, underlay_mtu=9000)
    host = lab.hosts[0]
    assert eth0(lab, host.netns)["mtu"] == 9000
    # 8972 bytes of ICMP payload + 28 of headers fill 9000 exactly; one more
    # byte must not fit with DF set.
    lab.netns_exec(host.netns, "ping", "-c1", "-W2", "-M", "do", "-s", "8972", CONTROLLER_IP)
    too_big = lab.netns_exec(host.netns, "ping", "-c1", "-W2", "-M", "do", "-s", "8973",
                             CONTROLLER_IP, check=False)
    assert too_big.returncode != 0


@pytest.mark.integration
def test_second_up_on_a_prefix_raises_and_changes_nothing(make_lab):
    lab = make_lab(hosts=2, start_vxmesh=False)
    state_file = lab.state_dir / "pids.json"
    before = (owned_netns(lab.prefix), state_file.read_text())

    with pytest.raises(LabExists, match=lab.prefix):
        Lab(lab.prefix).up(start_vxmesh=False)
    with pytest.raises(LabExists, match="already exists"):
        lab.up(start_vxmesh=False)

    assert (owned_netns(lab.prefix), state_file.read_text()) == before
    assert fetch_greeting(lab, lab.hosts[0].netns) == f"hello {lab.hosts[0].underlay_ip}\n"


@pytest.mark.integration
def test_status_from_a_fresh_process_lists_hosts_and_live_processes(make_lab):
    lab = make_lab(hosts=2, start_vxmesh=False)
    status = lab_cli("status", "--prefix", lab.prefix)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    ext_line = next(line for line in lines if line.split()[0] == "ext")
    assert lab.ext_ns in ext_line and "alive" in ext_line
    for host in lab.hosts:
        line = next(line for line in lines if line.split()[0] == host.name)
        assert host.netns in line and host.underlay_ip in line and "missing" not in line


@pytest.mark.integration
def test_down_from_a_fresh_process_removes_and_kills_everything(make_lab):
    lab = make_lab(hosts=2, start_vxmesh=False)
    host = lab.hosts[0]
    ext_record = Lab(lab.prefix)._procs.records["ext"]
    # What agents leave behind: a container namespace with a process in it,
    # a state dir, and a helper in the host namespace.
    container_ns = f"vxm-{host.name}-c1"
    # Another lab's objects whose names merely start like ours: must survive.
    bystanders = [f"{lab.prefix}x-h1", f"vxm-{lab.prefix}x-h1-c1"]
    agent_dir = Path("/run/vxmesh") / host.name
    made_agent_root = not agent_dir.parent.exists()
    sleepers = []
    try:
        for ns in [container_ns, *bystanders]:
            subprocess.run(["ip", "netns", "add", ns], check=True)
        agent_dir.mkdir(parents=True)
        for ns in [container_ns, host.netns]:
            sleepers.append(subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "300"],
                                             start_new_session=True))

        result = lab_cli("down", "--prefix", lab.prefix)
        assert result.returncode == 0, result.stderr

        assert [s.wait(timeout=5) for s in sleepers] == [-9, -9]
        assert not is_alive(ext_record)
        assert owned_netns(lab.prefix) == []
        assert not lab.state_dir.exists() and not agent_dir.exists()
        assert set(bystanders) <= set(list_netns())
        assert not lab.exists()
        again = lab_cli("down", "--prefix", lab.prefix)  # idempotent
        assert again.returncode == 0, again.stderr
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
        for ns in bystanders:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        shutil.rmtree(agent_dir, ignore_errors=True)
        if made_agent_root and agent_dir.parent.exists() and not any(agent_dir.parent.iterdir()):
            agent_dir.parent.rmdir()


@pytest.mark.integration
def test_down_without_a_state_file_derives_everything_from_the_prefix(make_lab):
    lab = make_lab(hosts=4, start_vxmesh=False)  # more hosts than a fresh Lab() assumes
    ext_record = lab._procs.records["ext"]
    (lab.state_dir / "pids.json").unlink()

    Lab(lab.prefix).down()

    assert owned_netns(lab.prefix) == []
    assert not is_alive(ext_record)
    assert not lab.state_dir.exists()


@pytest.mark.integration
def test_two_labs_coexist_and_tear_down_separately(make_lab):
    first = make_lab(hosts=2, start_vxmesh=False)
    second = make_lab(hosts=2, start_vxmesh=False)
    assert set(owned_netns(first.prefix)).isdisjoint(owned_netns(second.prefix))
    assert {h.name for h in first.hosts}.isdisjoint({h.name for h in second.hosts})
    for lab in (first, second):
        lab.netns_exec(lab.hosts[0].netns, "ping", "-c1", "-W2", lab.hosts[1].underlay_ip)
        assert fetch_greeting(lab, lab.hosts[1].netns) == f"hello {lab.hosts[1].underlay_ip}\n"

    second.down()

    assert owned_netns(second.prefix) == []
    assert len(owned_netns(first.prefix)) == 6  # fabric, ctl, ext, reg, h1, h2
    first.netns_exec(first.hosts[0].netns, "ping", "-c1", "-W2", first.hosts[1].underlay_ip)


@pytest.mark.integration
def test_a_process_that_fails_to_start_tears_the_lab_down_with_its_log(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("a lab needs root to create network namespaces")
    monkeypatch.setattr(lab_module.Lab, "controller_argv", lambda self, index=1: [
        sys.executable, "-c", "import sys, time; time.sleep(0.3); print('controller refused: boom'); sys.exit(3)"])
    lab = Lab(new_test_prefix(), hosts=1)
    try:
        with pytest.raises(LabError, match="controller refused: boom"):
            lab.up(start_vxmesh=True)
        assert not lab.exists()
        assert owned_netns(lab.prefix) == []
    finally:
        lab.down()
