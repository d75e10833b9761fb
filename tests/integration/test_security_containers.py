"""Attacks from inside containers, on a real lab, each next to its control.

    ctl 10.231.0.2:7946, ctl2 10.231.0.202:7946 (controllers), e1 10.231.0.3:2379/2380 (etcd)
    h1 10.231.0.11 (agent API :7947)              h2 10.231.0.12 (agent API :7947)
       attacker, victim (blue), ...                  client (blue), red-victim (red)

Every attack is what a container can do on its own: each is shown failing
with the protection in place, and succeeding, the very same way, with it
switched off (the agent's `vtep-filter` or `port-security` option, or the
guard rules deleted), so none of these tests can pass by accident.

The containers run busybox, which has no UDP client and no Python, so the
programs that send or answer datagrams are the host's Python run inside the
container's network namespace: what they can reach is what the container
can reach. They run as nobody with no capabilities (`AS_NOBODY`), as any
process in any container could. Changing a MAC or address needs NET_ADMIN:
that part runs in the container itself, through `vxmesh exec`, in a
container started with `--cap-add NET_ADMIN`.
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
from tests.helpers.images import BUSYBOX
from tests.helpers.lab_cli import inspect, network, run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

ETCD_IP = "10.231.0.3"          # etcd member e1
CONTROLLER_PORT = 7946
MARKER_PORT = 9999
NOBODY = "65534"
# A process with no privilege at all: nobody, no groups, no capability it could regain.
AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "--inh-caps=-all", "--bounding-set=-all")

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
# Exec'd in the attacker (busybox sh, NET_ADMIN) for SECONDS: take the victim's
# MAC and address, again and again (the agent repairs its interface every 10 s).
TAKE_ADDRESS = """
end=$(( $(date +%s) + {seconds} ))
while [ "$(date +%s)" -lt "$end" ]; do
    ip link set eth0 address {mac} 2>/dev/null
    ip addr add {ip}/{prefixlen} dev eth0 2>/dev/null
    usleep 50000
done
"""
# Beside it, in the attacker's network namespace as nobody: send from the
# victim's address whenever the attacker holds it.
SEND_FROM = """
import socket, sys, time
ip, client, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
end = time.time() + seconds
while time.time() < end:
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
def lab(busybox_archive):
    # Two controllers on a one-member etcd cluster of its own: every kind of
    # control-plane port is somewhere on the fabric.
    with lab_with_blue(hosts=2, image=busybox_archive, etcd_members=1, controllers=2) as lab:
        lab.cli("network", "create", "--subnet", "10.78.0.0/24", "red")
        yield lab


def nft_json(lab: Lab, netns: str, *what: str) -> list[dict] | None:
    proc = lab.netns_exec(netns, "nft", "-j", "list", *what, check=False)
    return json.loads(proc.stdout)["nftables"] if proc.returncode == 0 else None


def counter(lab: Lab, netns: str, family: str, table: str, name: str) -> int | None:
    listed = nft_json(lab, netns, "counter", family, table, name)
    return None if listed is None else next(o["counter"]["packets"] for o in listed if "counter" in o)


def container_netns(container: dict) -> str:
    return names.container_netns(container["host"], container["id"])


def python_in(lab: Lab, container: dict, script: str, *args: str, timeout: float = 30) -> str:
    """`script` run by nobody in `container`'s network namespace; what it printed."""
    return lab.netns_exec(container_netns(container), *AS_NOBODY, sys.executable, "-c", script, *args,
                          timeout=timeout).stdout


def background_python(container: dict, script: str, *args: str, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """`script` started by nobody in `container`'s network namespace; the caller stops it."""
    return subprocess.Popen(["ip", "netns", "exec", container_netns(container), *AS_NOBODY, sys.executable,
                             "-c", script, *args], stdout=stdout, stderr=subprocess.PIPE, text=True)


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


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


def injected(lab: Lab, attacker: dict, victim: dict, vtep: str, vni: int, tmp: Path) -> bool:
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
        uid = python_in(lab, attacker, SEND_AS_NOBODY, vtep, payload, "3").strip()
        assert uid == NOBODY   # not root: any process in any container could do this
        time.sleep(1.5)  # the datagrams cross the fabric and three bridges in well under that
    finally:
        capture.terminate()
        capture.wait(timeout=10)
    return marker.encode() in pcap.read_bytes()


def test_forged_vxlan_from_a_container_reaches_no_other_network_unless_the_filter_is_off(lab, tmp_path):
    h1, h2 = lab.hosts
    attacker = run(lab, "vx-attacker", 0, "blue")
    victim = run(lab, "vx-victim", 1, "red")
    red_vni = network(lab, "red")["vni"]

    def from_containers() -> int | None:
        return counter(lab, h1.netns, "inet", vtep_filter.TABLE, vtep_filter.FROM_CONTAINERS)

    before = from_containers()
    assert not injected(lab, attacker, victim, h2.underlay_ip, red_vni, tmp_path)
    assert from_containers() >= before + 3       # dropped on h1's forward path, counted
    # The same to h1's own VTEP (input), with blue's VNI for a network h1 has.
    before = from_containers()
    payload = forged_vxlan(network(lab, "blue")["vni"], victim, "red", "to-h1")
    python_in(lab, attacker, SEND_AS_NOBODY, h1.underlay_ip, payload, "2")
    wait_for(lambda: from_containers() >= before + 2, timeout=5, what="the input drops to be counted")

    # Control: with h1's filter off, the datagram is masqueraded to h1's VTEP
    # address, which h2 trusts, and the frame lands in red's container.
    try:
        lab.restart_agent_with(h1, {**lab.agent_options, "vtep-filter": "off"})
        wait_for(lambda: from_containers() is None, what="h1's agent to remove the filter table")
        assert inspect(lab, "vx-victim")["state"] == "running"
        assert injected(lab, attacker, victim, h2.underlay_ip, red_vni, tmp_path)
    finally:
        restore_agent(lab, 0)
    wait_for(lambda: from_containers() is not None, what="the filter back on h1")
    assert not injected(lab, attacker, victim, h2.underlay_ip, red_vni, tmp_path)
    remove(lab, "vx-attacker", "vx-victim")


# ---- 2. The control plane: etcd, every controller, other hosts' agent APIs ----------------------------


def probe(lab: Lab, container: dict, address: str, port: int) -> str:
    return python_in(lab, container, CONNECT, address, str(port)).strip()


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
    bridged = run(lab, "cp-bridge", 0, "bridge")
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
    for container in (overlay, bridged):
        for what, (address, port) in targets.items():
            assert probe(lab, container, address, port).startswith("closed"), (container["name"], what)

    # Control: the guard rules gone (the agent stopped, so it cannot put them
    # back), the same probes answer.
    lab.stop_agent(h1)
    try:
        delete_guard_rules(lab, 0)
        for what, (address, port) in targets.items():
            assert probe(lab, overlay, address, port) == "open", what
    finally:
        lab.start_agent(h1)
    wait_for(lambda: set(targets.values()) <= guarded_elements(lab, 0), timeout=20, what="the guards back")
    assert probe(lab, overlay, ETCD_IP, 2379).startswith("closed")
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


def ask(lab: Lab, client: dict, ip: str, count: int) -> list[str]:
    return json.loads(python_in(lab, client, ASK, ip, str(count), timeout=60))


def spoofed_seen(listener: subprocess.Popen, ip: str) -> int:
    """How many datagrams from the victim's address, sent by the attacker, the client's listener got."""
    stop(listener)
    return sum(1 for line in listener.stdout.read().splitlines() if line == f"{ip} from-attacker")


class TakeOver:
    """For `seconds`: the attacker takes the victim's MAC and address (in the container,
    with its NET_ADMIN) and sends from that address to the client (as nobody)."""

    def __init__(self, lab: Lab, attacker: dict, victim: dict, client_ip: str, seconds: float):
        address = victim["networks"]["blue"]
        prefixlen = network(lab, "blue")["subnet"].rpartition("/")[2]
        script = TAKE_ADDRESS.format(seconds=int(seconds), mac=address["mac"], ip=address["ip"],
                                     prefixlen=prefixlen)
        self.processes = [
            subprocess.Popen(lab.cli_argv("exec", attacker["name"], "--", "sh", "-c", script),
                             cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
            background_python(attacker, SEND_FROM, address["ip"], client_ip, str(seconds))]

    def wait(self) -> None:
        for process in self.processes:
            process.wait(timeout=60)


def test_a_container_with_net_admin_cannot_take_over_a_neighbour_unless_port_security_is_off(lab):
    h1 = lab.hosts[0]
    victim = run(lab, "mac-victim", 0, "blue")
    lab.cli("run", "-d", "--name", "mac-attacker", "--host", h1.name, "--network", "blue",
            "--cap-add", "NET_ADMIN", BUSYBOX, "sleep", "3600")
    attacker = inspect(lab, "mac-attacker")
    client = run(lab, "mac-client", 1, "blue")
    responders = [background_python(victim, RESPONDER, "victim"), background_python(attacker, RESPONDER, "attacker")]
    try:
        victim_ip = victim["networks"]["blue"]["ip"]
        client_ip = client["networks"]["blue"]["ip"]
        overlay_ns = names.overlay_netns(h1.name, network(lab, "blue")["vni"])
        attacker_port = names.overlay_veth(attacker["id"], 0)
        wait_for(lambda: ask(lab, client, victim_ip, 1) == ["victim"], what="the victim's responder")
        assert ask(lab, client, victim_ip, 3) == ["victim"] * 3

        def spoofed() -> int | None:
            return counter(lab, overlay_ns, "bridge", port_security.TABLE,
                           f"{port_security.COUNTER_PREFIX}{attacker_port}")

        def attacked() -> tuple[list[str], int]:
            """Who answers at the victim's address during an attack, and how many forged datagrams arrived."""
            listener = background_python(client, LISTENER, stdout=subprocess.PIPE)
            attack = TakeOver(lab, attacker, victim, client_ip, seconds=12)
            try:
                time.sleep(2)
                answers = ask(lab, client, victim_ip, 20)
            finally:
                attack.wait()
            return answers, spoofed_seen(listener, victim_ip)

        before = spoofed()
        answers, forged = attacked()
        assert "attacker" not in answers and answers.count("victim") >= 18, answers   # the victim keeps its traffic
        assert forged == 0                                                             # nothing from the forged source
        assert spoofed() > before + 20                                                 # dropped at the attacker's port

        # Control: port security off on h1, the same attack takes the victim's traffic
        # and the client accepts the forged source.
        try:
            lab.restart_agent_with(h1, {**lab.agent_options, "port-security": "off"})
            wait_for(lambda: spoofed() is None, what="h1's agent to remove the port-security tables")
            answers, forged = attacked()
            assert "attacker" in answers, answers
            assert forged > 0
        finally:
            restore_agent(lab, 0)
        wait_for(lambda: spoofed() is not None, what="port security back on h1")
    finally:
        stop(*responders)
    remove(lab, "mac-victim", "mac-attacker", "mac-client")
