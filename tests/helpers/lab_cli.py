"""What tests ask a namespace lab through its `vxmesh` CLI, read from the JSON it prints.

Each question has one function here: a container (`inspect`, read from
Docker's fields into the names `ps --format json` uses), a network (`network
inspect`, the same way), every container (`ps -a --format json`), whether one
container pings an address, and `run`, the way most tests start one
(detached, from the busybox image, `sleep 3600` unless told otherwise, on
the lab host with the given index). `controller` picks which of the lab's controllers answers.
"""
from __future__ import annotations

import datetime
import json
import subprocess

from deploy.lab import Lab
from deploy.lab_errors import LabCommandError
from tests.helpers.images import BUSYBOX


def inspect(lab: Lab, name: str, controller: int = 1) -> dict:
    """A container's facts, read from Docker's fields of its `inspect` and vxmesh's own ("Vxmesh")."""
    [found] = json.loads(lab.cli("inspect", name, controller=controller).stdout)   # an array, as Docker's
    return container_facts(found)


def network(lab: Lab, name: str = "blue", controller: int = 1) -> dict:
    """A network's facts, read from Docker's fields of its `network inspect` and vxmesh's own."""
    [found] = json.loads(lab.cli("network", "inspect", name, controller=controller).stdout)
    return network_facts(found)


def seconds(text: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, UTC) as a Unix time; its zero time is 0."""
    if text.startswith("0001-"):
        return 0.0
    whole, _, fraction = text.rstrip("Z").partition(".")
    when = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def container_facts(found: dict) -> dict:
    """What tests ask of a container, by the names `ps --format json` uses, from `inspect`'s fields."""
    state, config, settings, own = found["State"], found["Config"], found["NetworkSettings"], found["Vxmesh"]
    limits = found["HostConfig"]
    mode = limits["NetworkMode"]
    policy = limits["RestartPolicy"]
    return {
        "id": found["Id"], "name": found["Name"].removeprefix("/"), "host": own["Host"],
        "created_at": seconds(found["Created"]), "hostname": config["Hostname"], "image": config["Image"],
        "image_reference": own["ImageReference"], "image_digest": own["ImageDigest"], "image_id": found["Image"],
        "command": config["Cmd"] or [], "entrypoint": config["Entrypoint"],
        "env": dict(entry.split("=", 1) for entry in config["Env"]),
        "working_dir": config["WorkingDir"], "user": config["User"], "labels": config["Labels"],
        "state": state["Status"], "pid": state["Pid"], "exit_code": state["ExitCode"], "error": state["Error"],
        "oom_killed": state["OOMKilled"], "started_at": seconds(state["StartedAt"]),
        "finished_at": seconds(state["FinishedAt"]), "restart_count": found["RestartCount"],
        "restart_policy": f"{policy['Name']}:{policy['MaximumRetryCount']}" if policy["MaximumRetryCount"]
        else policy["Name"],
        "network_mode": mode if mode in ("host", "none") or mode.startswith("container:") else "default",
        "networks": {net: {"ip": e["IPAddress"], "mac": e["MacAddress"]} for net, e in settings["Networks"].items()},
        "ports": [f"{b['HostIp']}:{b['HostPort']}->{port}" for port, bound in settings["Ports"].items()
                  for b in bound or []],
        "exposed_ports": list(config["ExposedPorts"] or {}),
        "mounts": limits["Binds"] or [], "memory_bytes": limits["Memory"], "cpus": limits["NanoCpus"] / 1e9,
        "pids_limit": limits["PidsLimit"] or 0, "read_only": limits["ReadonlyRootfs"],
        "privileged": limits["Privileged"], "cap_add": limits["CapAdd"] or [], "cap_drop": limits["CapDrop"] or [],
        "security_opt": limits["SecurityOpt"] or [],
        "ulimits": [f"{u['Name']}={u['Soft']}:{u['Hard']}" for u in limits["Ulimits"] or []],
        "engine": own["Engine"], "engine_id": own["EngineId"],
    }


def network_facts(found: dict) -> dict:
    """What tests ask of a network, by vxmesh's record's names, from `network inspect`'s fields."""
    own = found["Vxmesh"]
    [ipam] = found["IPAM"]["Config"] or [{}]
    return {
        "name": found["Name"], "id": found["Id"], "driver": found["Driver"], "created_at": seconds(found["Created"]),
        "scope": "global" if found["Scope"] == "swarm" else found["Scope"],
        "subnet": ipam.get("Subnet", ""), "gateway": ipam.get("Gateway", ""), "ip_range": ipam.get("IPRange", ""),
        "vni": own["VNI"], "builtin": own["Builtin"], "internal": found["Internal"],
        "attachable": found["Attachable"], "labels": found["Labels"],
        "endpoints": [{"container": e["Name"], "host": own["Containers"][key]["Host"],
                       "ip": e["IPv4Address"].split("/")[0], "mac": e["MacAddress"],
                       "engine": own["Containers"][key]["Engine"]} for key, e in found["Containers"].items()],
    }


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
