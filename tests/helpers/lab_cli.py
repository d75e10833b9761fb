"""What tests ask a namespace lab through its `vxmesh` CLI, read from the JSON it prints.

Each question has one function here: a container (`inspect`), a network
(`network inspect`), every container (`ps -a --format json`), whether one
container pings an address, and `run`, the way most tests start one
(detached, from the busybox image, `sleep 3600` unless told otherwise, on
the lab host with the given index). `controller` picks which of the lab's controllers answers.
"""
from __future__ import annotations

import json
import subprocess

from deploy.lab import Lab
from deploy.lab_errors import LabCommandError
from tests.helpers.images import BUSYBOX


def inspect(lab: Lab, name: str, controller: int = 1) -> dict:
    [found] = json.loads(lab.cli("inspect", name, controller=controller).stdout)   # an array, as Docker's
    return found


def network(lab: Lab, name: str = "blue", controller: int = 1) -> dict:
    [found] = json.loads(lab.cli("network", "inspect", name, controller=controller).stdout)
    return found


def containers(lab: Lab, controller: int = 1, timeout: float = 30) -> list[dict]:
    """Every container, running or not."""
    return json.loads(lab.cli("ps", "-a", "--format", "json", controller=controller, timeout=timeout).stdout)


def run(lab: Lab, name: str, host: int, network_name: str = "blue", *command: str, controller: int = 1) -> dict:
    """`run -d` container `name` on `lab.hosts[host]`, attached to `network_name`; its `inspect`."""
    lab.cli("run", "-d", "--name", name, "--host", lab.hosts[host].name, "--network", network_name,
            BUSYBOX, *(command or ("sleep", "3600")), controller=controller)
    return inspect(lab, name, controller)


def pings(lab: Lab, source: str, ip: str, controller: int = 1, wait: int = 1) -> bool:
    """One ping from container `source` to `ip` answered within `wait` seconds."""
    return lab.cli("exec", source, "--", "ping", "-c", "1", "-W", str(wait), ip, check=False,
                   controller=controller).returncode == 0


def hosts_up(lab: Lab) -> bool:
    """Every host up in `host ls`; False while the controller cannot answer (e.g. during an etcd election)."""
    try:
        return set(lab.host_states().values()) == {"up"}
    except (LabCommandError, subprocess.TimeoutExpired):
        return False
