"""Attacks from inside containers, on a real lab, each next to its control.

    ctl 10.231.0.2:7946, ctl2 10.231.0.202:7946 (controllers), e1 10.231.0.3:2379/2380 (etcd)
    h1 10.231.0.11 (agent API :7947)              h2 10.231.0.12 (agent API :7947)
       attacker, victim (blue), ...                  client (blue), red-victim (red)

Every attack is what an ordinary container can do on its own (containers
get every capability today, NET_ADMIN among them): each is shown failing
with the protection in place, and succeeding, the very same way, with it
switched off (the agent's `vtep-filter` or `port-security` option, or the
guard rules deleted), so none of these tests can pass by accident.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.all import IP, UDP, Ether, Raw
from scapy.layers.vxlan import VXLAN

from agent import names
from agent.kernel import firewall, port_security, vtep_filter
from deploy.lab import REPO_ROOT, Lab
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect, network, run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

ETCD_IP = "10.231.0.3"          # etcd member e1
CONTROLLER_PORT = 7946
MARKER_PORT = 9999
NOBODY = "65534"

# Runs in a container as an unprivileged user: one UDP datagram, a payload
# given in hex, to the VXLAN port. Prints the uid it ran as.
SEND_AS_NOBODY = """
import os, socket, sys
vtep, payload, count = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(count):
    s.sendto(payload, (vtep, 4789))
print(os.geteuid())
"""

# Runs in a container: "open" if a TCP connection succeeds, else why not.
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
    print("open")
except OSError as err:
    print(f"closed: {err}")
"""

# A container's command: answer every datagram on port 7000 with its name.
RESPONDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7000))
while True:
    data, peer = s.recvfrom(100)
    s.sendto(sys.argv[1].encode(), peer)
"""
# The client's command: log every datagram to port 7001 with its source.
LISTENER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7001))
while True:
    data, peer = s.recvfrom(100)
    print(peer[0], data.decode(), flush=True)
"""
# Exec'd in the client: who answers at the victim's address, COUNT times.
ASK = """
import json, socket, sys, time
ip, count = sys.argv[1], int(sys.argv[2])
answers = []
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.sendto(b"who", (ip, 7000))
    try:
        answers.append(s.recv(100).decode())
    except OSError:
        answers.append("")
    s.close()
    time.sleep(0.1)
print(json.dumps(answers))
"""
# Exec'd in the attacker for SECONDS: take the victim's MAC and address (again
# and again: the agent repairs its interface every 10 s) and send from them.
TAKEOVER = """
import socket, subprocess, sys, time
mac, ip, prefixlen, client, seconds = sys.argv[1:6]
end = time.time() + float(seconds)
while time.time() < end:
    subprocess.run(["ip", "link", "set", "eth0", "address", mac], capture_output=True)
    subprocess.run(["ip", "addr", "add", f"{ip}/{prefixlen}", "dev", "eth0"], capture_output=True)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
        s.sendto(b"from-attacker", (client, 7001))
        s.close()
    except OSError:
        pass
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def lab():
    # Two controllers on a one-member etcd cluster of its own: every kind of
    # control-plane port is somewhere on the fabric.
    with lab_with_blue(hosts=2, etcd_members=1, controllers=2) as lab:
        lab.cli("network", "create", "--subnet", "10.78.0.0/24", "red")
        yield lab


def nft_json(lab: Lab, netns: str, *what: str) -> list[dict] | None:
    proc = lab.netns_exec(netns, "nft", "-j", "list", *what, check=False)
    return json.loads(proc.stdout)["nftables"] if proc.returncode == 0 else None


def counter(lab: Lab, netns: str, family: str, table: str, name: str) -> int | None:
    listed = nft_json(lab, netns, "counter", family, table, name)
    return None if listed is None else next(o["counter"]["packets"] for o in listed if "counter" in o)


def remove(lab: Lab, *containers: str) -> None:
    for name in containers:
        lab.cli("rm", "-f", name)


def restore_agent(lab: Lab, host: int) -> None:
    lab.restart_agent_with(lab.hosts[host], lab.agent_options)


# ---- 1. VXLAN injection into another network on another host -------------------------------------


def forged_vxlan(vni: int, victim: dict, network_name: str, marker: str) -> str:
    """A VXLAN datagram for `network_name`'s VNI carrying a frame for the victim, in hex."""
    address = victim["networks"][network_name]
    inner = (Ether(src="02:42:0a:ee:ee:ee", dst=address["mac"]) / IP(src="10.78.0.250", dst=address["ip"])
             / UDP(sport=40000, dport=MARKER_PORT) / Raw(marker.encode()))
    return bytes(VXLAN(vni=vni, flags=0x08) / inner).hex()


def injected(lab: Lab, attacker: str, victim: dict, vtep: str, vni: int, tmp: Path) -> bool:
    """Send a forged datagram for red's `vni` from `attacker` as nobody to `vtep`; True if
    the victim's eth0 saw it."""
    marker = f"vxmesh-forged-{secrets.token_hex(4)}"
    payload = forged_vxlan(vni, victim, "red", marker)
    pcap = tmp / f"{marker}.pcap"
    netns = names.container_netns(victim["host"], victim["id"])
    capture = subprocess.Popen(["ip", "netns", "exec", netns, "tcpdump", "-i", "eth0", "-U", "-n",
                                "-w", str(pcap), "udp", "port", str(MARKER_PORT)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pcap.exists(), what="tcpdump to start in the victim")
        uid = lab.cli("exec", attacker, "--", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                      "--clear-groups", "python3", "-c", SEND_AS_NOBODY, vtep, payload, "3").stdout.strip()
        assert uid == NOBODY   # not root: any process in any container could do this
        time.sleep(1.5)  # the datagrams cross the fabric and three bridges in well under that
    finally:
        capture.terminate()
        capture.wait(timeout=10)
    return marker.encode() in pcap.read_bytes()


def test_forged_vxlan_from_a_container_reaches_no_other_network_unless_the_filter_is_off(lab, tmp_path):
    h1, h2 = lab.hosts
    run(lab, "vx-attacker", 0, "blue")
    victim = run(lab, "vx-victim", 1, "red")
    red_vni = network(lab, "red")["vni"]

    def from_containers() -> int | None:
        return counter(lab, h1.netns, "inet", vtep_filter.TABLE, vtep_filter.FROM_CONTAINERS)

    before = from_containers()
    assert not injected(lab, "vx-attacker", victim, h2.underlay_ip, red_vni, tmp_path)
    assert from_containers() >= before + 3       # dropped on h1's forward path, counted
    # The same to h1's own VTEP (input), with blue's VNI for a network h1 has.
    before = from_containers()
    payload = forged_vxlan(network(lab, "blue")["vni"], victim, "red", "to-h1")
    lab.cli("exec", "vx-attacker", "--", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "python3", "-c", SEND_AS_NOBODY, h1.underlay_ip, payload, "2")
    wait_for(lambda: from_containers() >= before + 2, timeout=5, what="the input drops to be counted")

    # Control: with h1's filter off, the datagram is masqueraded to h1's VTEP
    # address, which h2 trusts, and the frame lands in red's container.
    try:
        lab.restart_agent_with(h1, {**lab.agent_options, "vtep-filter": "off"})
        wait_for(lambda: from_containers() is None, what="h1's agent to remove the filter table")
        assert inspect(lab, "vx-victim")["state"] == "running"
        assert injected(lab, "vx-attacker", victim, h2.underlay_ip, red_vni, tmp_path)
    finally:
        restore_agent(lab, 0)
    wait_for(lambda: from_containers() is not None, what="the filter back on h1")
    assert not injected(lab, "vx-attacker", victim, h2.underlay_ip, red_vni, tmp_path)
    remove(lab, "vx-attacker", "vx-victim")


# ---- 2. The control plane: etcd, every controller, other hosts' agent APIs ----------------------------


def probe(lab: Lab, container: str, address: str, port: int) -> str:
    return lab.cli("exec", container, "--", "python3", "-c", CONNECT, address, str(port),
                   check=False).stdout.strip()


def guarded_elements(lab: Lab, host: int) -> set[tuple[str, int]]:
    """The (address, port) pairs h<host+1>'s firewall drops from containers."""
    found = set()
    for obj in nft_json(lab, lab.hosts[host].netns, "table", "ip", "vxmesh") or []:
        rule = obj.get("rule", {})
        if rule.get("comment") == firewall.GUARD_COMMENT and rule.get("chain") == "forward":
            for expr in rule["expr"]:
                right = expr.get("match", {}).get("right")
                if isinstance(right, dict) and "set" in right:
                    found |= {tuple(e["concat"]) for e in right["set"] if isinstance(e, dict) and "concat" in e}
    return found


def delete_guard_rules(lab: Lab, host: int) -> None:
    netns = lab.hosts[host].netns
    for obj in nft_json(lab, netns, "table", "ip", "vxmesh"):
        rule = obj.get("rule", {})
        if rule.get("comment") == firewall.GUARD_COMMENT:
            lab.netns_exec(netns, "nft", "delete", "rule", "ip", "vxmesh", rule["chain"], "handle",
                           str(rule["handle"]))


def test_containers_reach_no_control_plane_port_of_any_host(lab):
    h1, h2 = lab.hosts
    overlay = run(lab, "cp-overlay", 0, "blue")
    run(lab, "cp-bridge", 0, "bridge")
    targets = {
        "etcd client": (ETCD_IP, 2379),
        "etcd peer": (ETCD_IP, 2380),
        "controller 1": (lab.controller_ip(1), CONTROLLER_PORT),
        "controller 2": (lab.controller_ip(2), CONTROLLER_PORT),
        "h2's agent API": (h2.underlay_ip, int(h2.api.rpartition(":")[2])),
    }
    # Control: each answers from h1's own namespace, where the agent runs.
    for what, (address, port) in targets.items():
        assert lab.netns_exec(h1.netns, sys.executable, "-c", CONNECT, address, str(port)).stdout.strip() \
            == "open", what
    wait_for(lambda: set(targets.values()) <= guarded_elements(lab, 0), timeout=20,
             what="h1 to guard every control-plane port")
    for container in ("cp-overlay", "cp-bridge"):
        for what, (address, port) in targets.items():
            assert probe(lab, container, address, port).startswith("closed"), (container, what)

    # Control: the guard rules gone (the agent stopped, so it cannot put them
    # back), the same probes answer. Without its agent no `exec` reaches the
    # container, so the probe enters its network namespace directly.
    lab.stop_agent(h1)
    try:
        delete_guard_rules(lab, 0)
        for what, (address, port) in targets.items():
            answer = lab.netns_exec(names.container_netns(h1.name, overlay["id"]), sys.executable,
                                    "-c", CONNECT, address, str(port)).stdout.strip()
            assert answer == "open", what
    finally:
        lab.start_agent(h1)
    wait_for(lambda: set(targets.values()) <= guarded_elements(lab, 0), timeout=20, what="the guards back")
    assert probe(lab, "cp-overlay", ETCD_IP, 2379).startswith("closed")
    remove(lab, "cp-overlay", "cp-bridge")


def test_the_guard_follows_controllers_as_they_come_and_go(lab):
    h1 = lab.hosts[0]
    second = (lab.controller_ip(2), CONTROLLER_PORT)
    # h1's agent knows only the first controller from its config: the second
    # one's guard can come only from the record it writes of itself.
    first_only = {**lab.agent_options, "controller": [f"{lab.controller_ip(1)}:{CONTROLLER_PORT}"]}
    try:
        lab.restart_agent_with(h1, first_only)
        wait_for(lambda: second in guarded_elements(lab, 0), timeout=20, what="h1 to guard the second controller")
        lab.stop_controller(2)
        wait_for(lambda: second not in guarded_elements(lab, 0), timeout=30,
                 what="the guard to go with the second controller's lease")
        assert (ETCD_IP, 2379) in guarded_elements(lab, 0)   # the first controller still announces etcd
        lab.start_controller(2)
        wait_for(lambda: second in guarded_elements(lab, 0), timeout=30, what="the guard back with the controller")
    finally:
        restore_agent(lab, 0)


# ---- 3. MAC and address takeover -----------------------------------------------------------------


def ask(lab: Lab, client: str, ip: str, count: int) -> list[str]:
    return json.loads(lab.cli("exec", client, "--", "python3", "-c", ASK, ip, str(count), timeout=60).stdout)


def spoofed_seen(lab: Lab, client: str, ip: str) -> int:
    """How many datagrams from the victim's address, sent by the attacker, the client got."""
    return sum(1 for line in lab.cli("logs", client).stdout.splitlines() if line == f"{ip} from-attacker")


def take_over(lab: Lab, victim: dict, client_ip: str, seconds: float) -> subprocess.Popen:
    address = victim["networks"]["blue"]
    prefixlen = network(lab, "blue")["subnet"].rpartition("/")[2]
    return subprocess.Popen(lab.cli_argv("exec", "mac-attacker", "--", "python3", "-c", TAKEOVER, address["mac"],
                                         address["ip"], prefixlen, client_ip, str(seconds)),
                            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_container_with_net_admin_cannot_take_over_a_neighbour_unless_port_security_is_off(lab):
    h1 = lab.hosts[0]
    victim = run(lab, "mac-victim", 0, "blue", "python3", "-c", RESPONDER, "victim")
    attacker = run(lab, "mac-attacker", 0, "blue", "python3", "-c", RESPONDER, "attacker")
    client = run(lab, "mac-client", 1, "blue", "python3", "-c", LISTENER)
    victim_ip = victim["networks"]["blue"]["ip"]
    client_ip = client["networks"]["blue"]["ip"]
    overlay_ns = names.overlay_netns(h1.name, network(lab, "blue")["vni"])
    attacker_port = names.overlay_veth(attacker["id"], 0)
    assert ask(lab, "mac-client", victim_ip, 3) == ["victim"] * 3

    def spoofed() -> int | None:
        return counter(lab, overlay_ns, "bridge", port_security.TABLE, f"{port_security.COUNTER_PREFIX}{attacker_port}")

    before = spoofed()
    attack = take_over(lab, victim, client_ip, seconds=12)
    try:
        time.sleep(2)
        answers = ask(lab, "mac-client", victim_ip, 20)
    finally:
        attack.wait(timeout=60)
    assert "attacker" not in answers and answers.count("victim") >= 18, answers   # the victim keeps its traffic
    assert spoofed_seen(lab, "mac-client", victim_ip) == 0                         # nothing from the forged source
    assert spoofed() > before + 20                                                 # dropped at the attacker's port

    # Control: port security off on h1, the same attack takes the victim's traffic
    # and the client accepts the forged source.
    try:
        lab.restart_agent_with(h1, {**lab.agent_options, "port-security": "off"})
        wait_for(lambda: spoofed() is None, what="h1's agent to remove the port-security tables")
        attack = take_over(lab, victim, client_ip, seconds=12)
        try:
            time.sleep(2)
            answers = ask(lab, "mac-client", victim_ip, 20)
        finally:
            attack.wait(timeout=60)
        assert "attacker" in answers, answers
        assert spoofed_seen(lab, "mac-client", victim_ip) > 0
    finally:
        restore_agent(lab, 0)
    wait_for(lambda: spoofed() is not None, what="port security back on h1")
    remove(lab, "mac-victim", "mac-attacker", "mac-client")
