"""Services' virtual IPs on a namespace lab: requests from a container to the
VIP spread over the tasks on every host, a killed task leaves every load
balancer before its replacement exists, and dnsrr services have no VIP."""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter

import pytest

from agent import names
from agent.kernel import service_lb
from deploy.lab import Lab
from tests.helpers.images import BUSYBOX, CHECKED, SICK_FILE
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect, network, run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

REQUESTS = 300
# Each task answers with its hostname, the suffix of its task name.
SERVE = ("sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www")


@pytest.fixture(scope="module")
def lab(busybox_archive, checked_archive):
    with lab_with_blue(hosts=3, image=busybox_archive) as lab:
        lab.load_image(checked_archive)
        run(lab, "client", 0)
        yield lab


def service(lab: Lab, name: str) -> dict:
    [detail] = json.loads(lab.cli("service", "inspect", name).stdout)
    return detail


def settled(lab: Lab, name: str, count: int) -> bool:
    tasks = service(lab, name)["tasks"]
    return len(tasks) == count and all(t["state"] == "running" for t in tasks)


def fetch_loop(lab: Lab, url: str, count: int, pause: str = "0") -> list[str]:
    """`count` requests from the client, one at a time: each answer, or FAIL."""
    script = (f"for i in $(seq {count}); do timeout 2 wget -qO- {url} 2>/dev/null || echo FAIL; "
              f"[ {pause} = 0 ] || usleep {pause}; done")
    out = lab.cli("exec", "client", "--", "sh", "-c", script, timeout=600).stdout
    return out.split()


def netns_of(lab: Lab, container: str) -> str:
    detail = inspect(lab, container)
    return names.container_netns(detail["host"], detail["id"])


def balancer(lab: Lab, container: str) -> list[service_lb.Balanced]:
    """What the container's load-balancer table holds, read from its namespace."""
    return asyncio.run(service_lb.read(netns_of(lab, container)))


def test_requests_to_the_vip_spread_over_the_tasks_on_every_host(lab):
    lab.cli("service", "create", "--name", "web", "--replicas", "3", "--network", "blue", BUSYBOX, *SERVE)
    wait_for(lambda: settled(lab, "web", 3), 60, "three running tasks of web")
    detail = service(lab, "web")
    vip = detail["virtual_ips"]["blue"]
    assert detail["endpoint_mode"] == "vip" and vip.startswith("10.77.0.")
    tasks = {t["name"].rsplit(".", 1)[1]: t for t in detail["tasks"]}
    assert sorted(t["host"] for t in tasks.values()) == sorted(h.name for h in lab.hosts)
    wait_for(lambda: [len(b.backends) for b in balancer(lab, "client")] == [3], 30, "the client's VIP map")

    answers = Counter(fetch_loop(lab, f"http://{vip}/", REQUESTS))
    print(f"{REQUESTS} requests to the VIP: {dict(answers)}")
    assert set(answers) == set(tasks), answers
    assert all(n >= REQUESTS * 0.2 for n in answers.values()), answers
    # By name, through the embedded DNS: the service's name is its VIP, tasks.web its tasks.
    by_name = Counter(fetch_loop(lab, "http://web/", 60))
    assert set(by_name) == set(tasks), by_name
    listed = lab.cli("exec", "client", "--", "nslookup", "tasks.web").stdout
    found = sorted(set(re.findall(r"Address:\s*(10\.77\.0\.\d+)", listed)))
    assert found == sorted(t["addresses"]["blue"] for t in tasks.values()), listed
    answer = lab.cli("exec", "client", "--", "nslookup", "web").stdout
    assert re.findall(r"Address:\s*(10\.77\.0\.\d+)", answer) == [vip], answer
    # Control: the same address without the table reaches nothing (nobody owns a VIP).
    # (In one shell in the client's namespace, before the agent's next pass can restore it.)
    control = lab.netns_exec(netns_of(lab, "client"), "sh", "-c",
                             f"nft delete table ip {service_lb.TABLE} && timeout 2 busybox wget -qO- http://{vip}/",
                             check=False)
    assert control.returncode != 0 and not control.stdout.strip(), control
    # The agent's periodic pass puts the table back.
    wait_for(lambda: [len(b.backends) for b in balancer(lab, "client")] == [3], 30, "the table restored")


def test_a_killed_task_leaves_the_balancers_before_it_is_replaced(lab):
    lab.cli("service", "create", "--name", "slow", "--replicas", "3", "--network", "blue",
            "--restart-delay", "4s", BUSYBOX, *SERVE)
    wait_for(lambda: settled(lab, "slow", 3), 60, "three running tasks of slow")
    vip = service(lab, "slow")["virtual_ips"]["blue"]
    wait_for(lambda: any(len(b.backends) == 3 and b.vip == vip for b in balancer(lab, "client")), 30,
             "the client's map for slow")
    victim = service(lab, "slow")["tasks"][1]
    address = victim["addresses"]["blue"]
    results: list[str] = []
    loop = threading.Thread(target=lambda: results.extend(fetch_loop(lab, f"http://{vip}/", 150, "20000")))
    loop.start()
    time.sleep(1.0)
    before = time.monotonic()
    lab.cli("kill", victim["name"])
    killed = time.monotonic()              # the CLI returns once the agent sent the signal
    wait_for(lambda: all(address not in b.backends for b in balancer(lab, "client") if b.vip == vip), 10,
             "the dead task out of the client's map", interval=0.02)
    left = time.monotonic() - killed
    replaced = [t for t in service(lab, "slow")["tasks"] if t["slot"] == victim["slot"]]
    assert all(t["name"] == victim["name"] for t in replaced), "replaced before it left the balancer"
    loop.join()
    failures = results.count("FAIL")
    print(f"the killed task left the client's balancer {left * 1000:.0f} ms after `kill` returned "
          f"({(killed - before) * 1000:.0f} ms for `kill` itself); "
          f"{failures} of {len(results)} requests failed")
    assert len(results) == 150
    assert failures <= 3, results
    wait_for(lambda: settled(lab, "slow", 3), 60, "the slot refilled")
    wait_for(lambda: any(len(b.backends) == 3 and b.vip == vip for b in balancer(lab, "client")), 30,
             "the replacement in the client's map")
    lab.cli("service", "rm", "slow")
    wait_for(lambda: all(b.vip != vip for b in balancer(lab, "client")), 30, "slow's VIP gone from the client")


def test_a_dnsrr_service_has_no_vip(lab):
    lab.cli("service", "create", "--name", "rr", "--replicas", "2", "--network", "blue",
            "--endpoint-mode", "dnsrr", BUSYBOX, *SERVE)
    wait_for(lambda: settled(lab, "rr", 2), 60, "two tasks of rr")
    detail = service(lab, "rr")
    assert detail["endpoint_mode"] == "dnsrr" and detail["virtual_ips"] == {}
    # Each task answers on its own address.
    for task in detail["tasks"]:
        assert fetch_loop(lab, f"http://{task['addresses']['blue']}/", 1) == [task["name"].rsplit(".", 1)[1]]
    lab.cli("service", "rm", "rr")


def from_outside(lab: Lab, address: str, port: int, count: int = 1) -> list[str]:
    """`count` requests from the lab's outside server namespace (ext) to ADDRESS:PORT."""
    script = f"for i in $(seq {count}); do timeout 2 wget -qO- http://{address}:{port}/ 2>/dev/null || echo FAIL; done"
    return lab.netns_exec(lab.ext_ns, "sh", "-c", script, timeout=300).stdout.split()


def legs(lab: Lab) -> list[str]:
    return sorted(e["host"] for e in network(lab, "blue")["endpoints"] if e["container"].startswith("_mesh."))


def test_the_routing_mesh_answers_on_every_host_even_one_without_a_task(lab):
    first, last = lab.hosts[0], lab.hosts[2]
    lab.cli("service", "create", "--name", "mesh", "--network", "blue", "-p", "8080:80",
            "--constraint", f"node.hostname=={first.name}", BUSYBOX, *SERVE)
    wait_for(lambda: settled(lab, "mesh", 1), 60, "the task of mesh")
    [task] = service(lab, "mesh")["tasks"]
    suffix = task["name"].rsplit(".", 1)[1]
    wait_for(lambda: legs(lab) == sorted(h.name for h in lab.hosts), 30, "a mesh leg on every host")
    for host in lab.hosts:
        assert wait_for(lambda: from_outside(lab, host.underlay_ip, 8080) == [suffix], 30,
                        f"port 8080 of {host.name} to answer")
    # The cost of the extra hop across the overlay, in this run.
    timings = {}
    for host in (first, last):
        began = time.monotonic()
        answers = from_outside(lab, host.underlay_ip, 8080, 100)
        timings[host.name] = (time.monotonic() - began) / 100
        assert answers == [suffix] * 100
    print("routing mesh, 100 requests each: " + ", ".join(
        f"{name} {'(the task here)' if name == first.name else '(no task)'} {t * 1000:.1f} ms/request"
        for name, t in timings.items()))
    # More tasks: any host's port reaches all of them.
    lab.cli("service", "rm", "mesh")
    wait_for(lambda: legs(lab) == [], 30, "the legs gone with the last published service")
    assert from_outside(lab, last.underlay_ip, 8080) == ["FAIL"]


def test_a_spread_service_answers_from_every_task_through_any_host(lab):
    lab.cli("service", "create", "--name", "spread", "--replicas", "3", "--network", "blue", "-p", "8082:80",
            BUSYBOX, *SERVE)
    wait_for(lambda: settled(lab, "spread", 3), 60, "three tasks of spread")
    suffixes = {t["name"].rsplit(".", 1)[1] for t in service(lab, "spread")["tasks"]}
    wait_for(lambda: len(legs(lab)) == 3, 30, "the legs")
    answers = Counter(from_outside(lab, lab.hosts[1].underlay_ip, 8082, 90))
    assert set(answers) == suffixes, (answers, service(lab, "spread")["tasks"], legs(lab))
    lab.cli("service", "rm", "spread")


def test_publish_mode_host_opens_the_port_only_where_tasks_run(lab):
    target = lab.hosts[1]
    lab.cli("service", "create", "--name", "local", "--network", "blue", "--constraint",
            f"node.hostname=={target.name}", "--publish", "published=8081,target=80,mode=host", BUSYBOX, *SERVE)
    wait_for(lambda: settled(lab, "local", 1), 60, "the task of local")
    [task] = service(lab, "local")["tasks"]
    assert from_outside(lab, target.underlay_ip, 8081) == [task["name"].rsplit(".", 1)[1]]
    assert from_outside(lab, lab.hosts[0].underlay_ip, 8081) == ["FAIL"]
    assert legs(lab) == []                          # no routing mesh for it
    lab.cli("service", "rm", "local")


def test_an_unhealthy_task_leaves_the_balancer_and_is_replaced(lab):
    lab.cli("service", "create", "--name", "checked", "--replicas", "2", "--network", "blue",
            "--health-cmd", "test -f /tmp/ok", "--health-interval", "300ms", "--health-retries", "2",
            "--restart-delay", "3s", BUSYBOX, "sh", "-c", f"touch /tmp/ok && {SERVE[2]}")

    def healthy() -> list[dict]:
        tasks = service(lab, "checked")["tasks"]
        return tasks if len(tasks) == 2 and all(t["health"] == "healthy" for t in tasks) else []
    tasks = wait_for(healthy, 60, "two healthy tasks")
    vip = service(lab, "checked")["virtual_ips"]["blue"]
    wait_for(lambda: any(b.vip == vip and len(b.backends) == 2 for b in balancer(lab, "client")), 30,
             "both in the client's map")
    sick = tasks[0]
    # Its check fails from now on: out of every map, then (its restart back-off began long ago) replaced.
    lab.cli("exec", sick["name"], "--", "rm", "/tmp/ok")
    wait_for(lambda: all(sick["addresses"]["blue"] not in b.backends for b in balancer(lab, "client")
                         if b.vip == vip), 30, "the unhealthy task out of the map", interval=0.05)
    # healthy() is empty while any task is not healthy: wait for the new task of the slot itself.
    replacement = wait_for(lambda: next((t for t in healthy() if t["slot"] == sick["slot"]
                                         and t["name"] != sick["name"]), None), 60, "the unhealthy task replaced")
    assert replacement["restarts"] == 1
    lab.cli("service", "rm", "checked")


def test_the_images_healthcheck_checks_tasks_and_containers_unless_disabled(lab):
    """CHECKED's HEALTHCHECK (no --health-cmd given) is run in its tasks and in a plain
    container; --no-healthcheck turns it off: the control's task, sick as the other,
    stays in the balancer and is not replaced."""
    lab.cli("service", "create", "--name", "imgcheck", "--replicas", "2", "--network", "blue",
            "--restart-delay", "3s", CHECKED)
    lab.cli("service", "create", "--name", "nocheck", "--network", "blue", "--no-healthcheck", CHECKED)
    lab.cli("run", "-d", "--name", "plain", "--network", "blue", CHECKED)
    lab.cli("run", "-d", "--name", "plain-off", "--network", "blue", "--no-healthcheck", CHECKED)

    def healthy() -> list[dict]:
        tasks = service(lab, "imgcheck")["tasks"]
        return tasks if len(tasks) == 2 and all(t["health"] == "healthy" for t in tasks) else []
    tasks = wait_for(healthy, 60, "two healthy tasks of imgcheck, checked by the image's HEALTHCHECK")
    wait_for(lambda: settled(lab, "nocheck", 1), 60, "the task of nocheck")
    [control] = service(lab, "nocheck")["tasks"]
    assert control["health"] == ""
    assert service(lab, "nocheck")["healthcheck"]["disabled"] is True
    vip = service(lab, "imgcheck")["virtual_ips"]["blue"]
    control_vip = service(lab, "nocheck")["virtual_ips"]["blue"]

    def backends(which: str) -> list[str]:
        return next((list(b.backends) for b in balancer(lab, "client") if b.vip == which), [])
    wait_for(lambda: len(backends(vip)) == 2 and backends(control_vip) == [control["addresses"]["blue"]], 30,
             "both services in the client's map")
    # A plain container: the same check, its state in `inspect` and `ps` as Docker shows it.
    wait_for(lambda: inspect(lab, "plain")["health"] == "healthy", 30, "plain healthy")
    assert "(healthy)" in lab.cli("ps", "--filter", "name=plain").stdout

    sick = tasks[0]
    for name in (sick["name"], control["name"], "plain", "plain-off"):
        lab.cli("exec", name, "--", "touch", SICK_FILE)
    wait_for(lambda: sick["addresses"]["blue"] not in backends(vip), 30, "the sick task out of the map",
             interval=0.05)
    wait_for(lambda: inspect(lab, "plain")["health"] == "unhealthy", 30, "plain unhealthy")
    replacement = wait_for(lambda: next((t for t in healthy() if t["slot"] == sick["slot"]
                                         and t["name"] != sick["name"]), None), 60, "the sick task replaced")
    assert replacement["restarts"] == 1
    # The control had as long (its check would have failed within 0.6 s): still there, untouched.
    [after] = service(lab, "nocheck")["tasks"]
    assert (after["name"], after["health"], after["restarts"]) == (control["name"], "", 0)
    assert backends(control_vip) == [control["addresses"]["blue"]]
    assert inspect(lab, "plain-off")["health"] == "" and inspect(lab, "plain-off")["state"] == "running"
    lab.cli("service", "rm", "imgcheck", "nocheck")
    lab.cli("rm", "-f", "plain", "plain-off")


def test_a_dead_host_leaves_the_balancers_and_the_vip_keeps_answering(lab):
    """The host's agent killed for good and its cable unplugged: its task leaves every
    map at once (its host is down), the slot is refilled on a live host, and the VIP
    answers throughout but for requests in flight to the dead host."""
    gone = lab.hosts[2]
    lab.cli("service", "create", "--name", "sturdy", "--replicas", "3", "--network", "blue", BUSYBOX, *SERVE)
    wait_for(lambda: settled(lab, "sturdy", 3), 60, "three tasks of sturdy")
    vip = service(lab, "sturdy")["virtual_ips"]["blue"]
    lost = next(t for t in service(lab, "sturdy")["tasks"] if t["host"] == gone.name)
    wait_for(lambda: any(b.vip == vip and len(b.backends) == 3 for b in balancer(lab, "client")), 30, "the map")
    killed = time.monotonic()
    lab.stop_agent(gone)
    lab.netns_exec(gone.netns, "ip", "link", "set", "eth0", "down")
    try:
        wait_for(lambda: all(lost["addresses"]["blue"] not in b.backends for b in balancer(lab, "client")
                             if b.vip == vip), 30, "the dead host's task out of the map")
        left = time.monotonic() - killed
        wait_for(lambda: settled(lab, "sturdy", 3)
                 and gone.name not in {t["host"] for t in service(lab, "sturdy")["tasks"]},
                 60, "the slot refilled on a live host")
        print(f"dead host: its task left the client's map {left:.1f} s after the agent died; "
              f"full strength after {time.monotonic() - killed:.1f} s")
        answers = fetch_loop(lab, f"http://{vip}/", 30)
        assert answers.count("FAIL") == 0, answers
    finally:
        lab.netns_exec(gone.netns, "ip", "link", "set", "eth0", "up")
        lab.start_agent(gone)
    lab.cli("service", "rm", "sturdy")
