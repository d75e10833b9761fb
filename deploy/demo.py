"""What `make lab` does after the lab is up: the overlay shown working, with containers from an image.

Builds a busybox image (deploy/images.py), loads it into the lab's registry
with `vxmesh image load`, as a user loads a `docker save` tarball, creates
network `demo`, runs one busybox container on each host, and prints the
connectivity matrix (every container pings every other by IP across hosts),
then the commands to try next. Run on a lab that is already up, it says so
and changes nothing.
"""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from deploy.lab import Lab
from deploy.lab_errors import LabError, LabExists

DEMO_NETWORK = "demo"
DEMO_SUBNET = "10.100.0.0/24"
DEMO_IMAGE = "busybox"


def build_demo(lab: Lab) -> list[dict]:
    lab.cli("network", "create", "--subnet", DEMO_SUBNET, DEMO_NETWORK)
    containers = []
    for index, host in enumerate(lab.hosts, start=1):
        name = f"c{index}"
        lab.cli("run", "-d", "--name", name, "--host", host.name, "--network", DEMO_NETWORK,
                DEMO_IMAGE, "sleep", "infinity")
        [found] = json.loads(lab.cli("inspect", name).stdout)
        containers.append({"name": name, "host": found["Vxmesh"]["Host"],
                           "ip": found["NetworkSettings"]["Networks"][DEMO_NETWORK]["IPAddress"]})
    return containers


def connectivity_matrix(lab: Lab, containers: list[dict]) -> tuple[str, bool]:
    """Every container pings every other; returns the printed matrix and whether all passed."""
    pairs = [(src, dst) for src in containers for dst in containers if src is not dst]

    def ping(pair) -> bool:
        src, dst = pair
        ip = dst["ip"]
        return lab.cli("exec", src["name"], "--", "ping", "-c", "1", "-W", "2", ip, check=False).returncode == 0

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = dict(zip([(s["name"], d["name"]) for s, d in pairs], pool.map(ping, pairs)))
    names = [c["name"] for c in containers]
    labels = {c["name"]: f"{c['name']}@{c['host']}" for c in containers}
    corner = "from \\ to"
    width = max(len(corner), *(len(label) for label in labels.values())) + 2
    lines = [corner.ljust(width) + "".join(labels[n].ljust(width) for n in names)]
    for src in names:
        cells = ["-" if src == dst else ("ok" if results[(src, dst)] else "FAIL") for dst in names]
        lines.append(labels[src].ljust(width) + "".join(c.ljust(width) for c in cells))
    return "\n".join(lines), all(results.values())


DEMO_SERVICE = "web"
DEMO_PORT = 8080
SERVE = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"


def build_service(lab: Lab, timeout: float = 60.0) -> dict:
    """A three-replica service on the demo network, published on every host; its inspect."""
    lab.cli("service", "create", "--name", DEMO_SERVICE, "--replicas", "3", "--network", DEMO_NETWORK,
            "-p", f"{DEMO_PORT}:80", DEMO_IMAGE, "sh", "-c", SERVE)
    deadline = time.monotonic() + timeout
    while True:
        [detail] = json.loads(lab.cli("service", "inspect", DEMO_SERVICE).stdout)
        if sum(t["state"] == "running" for t in detail["tasks"]) == 3 or time.monotonic() > deadline:
            return detail


def service_answers(lab: Lab, detail: dict, client: str) -> tuple[str, bool]:
    """Who answers: the VIP from a container, and the published port of every host from outside."""
    vip = detail["virtual_ips"][DEMO_NETWORK]
    lines, ok = [], True
    script = f"for i in 1 2 3 4 5 6; do timeout 2 wget -qO- http://{vip}/ || echo FAIL; done"
    answers = lab.cli("exec", client, "--", "sh", "-c", script, check=False).stdout.split()
    lines.append(f"  {client} -> VIP {vip}:80          " + " ".join(answers))
    ok = ok and "FAIL" not in answers and len(answers) == 6
    for host in lab.hosts:
        url = f"http://{host.underlay_ip}:{DEMO_PORT}/"
        got = lab.netns_exec(lab.ext_ns, "sh", "-c", f"timeout 2 wget -qO- {url} || echo FAIL", check=False)
        answer = got.stdout.strip() or "FAIL"
        lines.append(f"  outside -> {host.name} {host.underlay_ip}:{DEMO_PORT}  {answer}")
        ok = ok and answer != "FAIL"
    return "\n".join(lines), ok


NEXT_STEPS = """
Try next (the CLI reaches the lab's controller through its unix socket):
  export VXMESH_CONTROLLER=unix://{socket}
  .venv/bin/vxmesh host ls
  .venv/bin/vxmesh images
  .venv/bin/vxmesh network create --subnet 10.77.0.0/24 blue
  .venv/bin/vxmesh run -d --name b1 --host {h1} --network blue busybox sleep infinity
  .venv/bin/vxmesh run -d --name b2 --host {h2} --network blue busybox httpd -f -p 80 -h /var/www
  .venv/bin/vxmesh exec b1 -- wget -qO- http://$(.venv/bin/vxmesh inspect -f '{{{{.NetworkSettings.Networks.blue.IPAddress}}}}' b2)/
  .venv/bin/vxmesh tables {h1}
  .venv/bin/vxmesh ps
  .venv/bin/vxmesh service ps web; .venv/bin/vxmesh service scale web=5
  .venv/bin/vxmesh kill $(.venv/bin/vxmesh service ps web --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
When done: make lab-down
"""


def main() -> int:
    lab = Lab()
    try:
        lab.up()
    except LabExists:
        print("The lab is already running; nothing changed. (`make lab-down` removes it.)")
        print(lab.status())
        return 0
    except LabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(lab.status())
    print(f"\nThe busybox image, built here and loaded into the lab's registry {lab.registry}:")
    print(lab.load_busybox().rstrip())
    print(lab.cli("images").stdout.rstrip())
    containers = build_demo(lab)
    matrix, ok = connectivity_matrix(lab, containers)
    print(f"\nContainers from image {DEMO_IMAGE}, one per host:\n")
    print(lab.cli("ps").stdout.rstrip())
    print(f"\nConnectivity matrix on overlay network '{DEMO_NETWORK}' ({DEMO_SUBNET}), ping by IP:\n")
    print(matrix)
    detail = build_service(lab)
    print(f"\nService {DEMO_SERVICE}: 3 replicas on '{DEMO_NETWORK}', one VIP, port {DEMO_PORT} on every host:\n")
    print(lab.cli("service", "ps", DEMO_SERVICE).stdout.rstrip())
    answers, served = service_answers(lab, detail, containers[0]["name"])
    print("\nWho answers (each task serves its hostname):\n" + answers)
    ok = ok and served
    print(NEXT_STEPS.format(socket=lab.controller_socket, h1=lab.hosts[0].name, h2=lab.hosts[1].name))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
