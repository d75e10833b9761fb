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
        containers.extend(json.loads(lab.cli("inspect", name).stdout))
    return containers


def connectivity_matrix(lab: Lab, containers: list[dict]) -> tuple[str, bool]:
    """Every container pings every other; returns the printed matrix and whether all passed."""
    pairs = [(src, dst) for src in containers for dst in containers if src is not dst]

    def ping(pair) -> bool:
        src, dst = pair
        ip = dst["networks"][DEMO_NETWORK]["ip"]
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


NEXT_STEPS = """
Try next (the CLI reaches the lab's controller through its unix socket):
  export VXMESH_CONTROLLER=unix://{socket}
  .venv/bin/vxmesh host ls
  .venv/bin/vxmesh images
  .venv/bin/vxmesh network create --subnet 10.77.0.0/24 blue
  .venv/bin/vxmesh run -d --name b1 --host {h1} --network blue busybox sleep infinity
  .venv/bin/vxmesh run -d --name b2 --host {h2} --network blue busybox httpd -f -p 80 -h /var/www
  .venv/bin/vxmesh exec b1 -- wget -qO- http://$(.venv/bin/vxmesh inspect b2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["networks"]["blue"]["ip"])')/
  .venv/bin/vxmesh tables {h1}
  .venv/bin/vxmesh ps
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
    print(NEXT_STEPS.format(socket=lab.controller_socket, h1=lab.hosts[0].name, h2=lab.hosts[1].name))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
