"""What the CLI prints: docker-style tables, and the JSON shapes of inspect and ps."""
from __future__ import annotations

import datetime
import time

from cli.options import format_port
from proto import image_ref
from proto import vxmesh_pb2 as pb
from proto.errors import InvalidArgument
from proto.image_ref import ImageRef
from proto.network_mode import DEFAULT_NETWORK
from proto.records import ContainerSpec, ContainerStatus, Endpoint, Host, Network


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def container_json(detail: pb.ContainerDetail) -> dict:
    spec = ContainerSpec.from_wire(detail.spec)
    status = ContainerStatus.from_wire(detail.status)
    return {
        "id": spec.id, "name": spec.name, "host": spec.host, "hostname": spec.hostname,
        "command": spec.command, "env": spec.env, "created_at": spec.created_at,
        "state": status.state, "pid": status.pid, "exit_code": status.exit_code,
        "started_at": status.started_at, "finished_at": status.finished_at, "error": status.error,
        "network_mode": spec.network_mode or "default",
        "networks": {a.network: {"ip": a.ip, "mac": a.mac} for a in spec.attachments},
        "ports": [format_port(p) for p in spec.ports],
        "exposed_ports": spec.exposed_ports,
        "mounts": [f"{m.source}:{m.target}{':ro' if m.readonly else ''}" for m in spec.mounts],
        "memory_bytes": spec.memory_bytes, "cpus": spec.cpus, "pids_limit": spec.pids_limit,
        "image": familiar(spec.image), "image_reference": spec.image, "image_digest": spec.image_digest,
        "image_id": spec.image_id,
        "entrypoint": spec.entrypoint if spec.entrypoint_set else None,
        "working_dir": spec.working_dir, "user": spec.user, "read_only": spec.read_only,
        "privileged": spec.privileged, "cap_add": spec.cap_add, "cap_drop": spec.cap_drop,
        "security_opt": security_opt(spec), "ulimits": [u.text for u in spec.ulimits],
        "oom_killed": status.oom_killed, "labels": spec.labels,
        "restart_policy": _restart_text(spec), "restart_count": status.restart_count,
        "health": status.health,
        "engine": spec.engine, "engine_id": spec.engine_id,
    }


def _restart_text(spec: ContainerSpec) -> str:
    policy = spec.restart_policy or "no"
    return f"{policy}:{spec.restart_max_retries}" if spec.restart_max_retries else policy


def familiar(reference: str) -> str:
    """busybox:latest for docker.io/library/busybox:latest (what Docker shows)."""
    try:
        return image_ref.parse(reference).familiar
    except InvalidArgument:
        return reference


def security_opt(spec: ContainerSpec) -> list[str]:
    """The confinement beyond Docker's defaults, as --security-opt would say it."""
    options = []
    if spec.seccomp and spec.seccomp != "default":
        options.append("seccomp=unconfined" if spec.seccomp == "unconfined" else "seccomp=<profile>")
    if spec.allow_new_privileges:
        options.append("no-new-privileges=false")
    return options


def network_json(detail: pb.NetworkDetail) -> dict:
    network = Network.from_wire(detail.network)
    data = dict(network.to_dict())
    data["endpoints"] = [{"container": e.container, "host": e.host, "ip": e.ip, "mac": e.mac,
                          "engine": e.engine}
                         for e in (Endpoint.from_wire(x) for x in detail.endpoints)]
    return data


def network_rows(networks: list[Network]) -> str:
    """`network ls`: Docker's columns (its "swarm" scope is our "global") plus subnet, gateway, VNI."""
    return table([[n.id[:12], n.name, n.driver, "swarm" if n.scope == "global" else n.scope or "-",
                   # The default bridge's subnet is each host's own (agent option bridge-subnet).
                   n.subnet or ("per host" if n.name == DEFAULT_NETWORK else "-"),
                   n.gateway or "-", str(n.vni) if n.vni else "-"] for n in networks],
                 ["NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "GATEWAY", "VNI"])


def host_rows(hosts: list[Host]) -> str:
    return table([[h.name, h.vtep, h.state, str(h.containers)] for h in hosts],
                 ["NAME", "VTEP", "STATE", "CONTAINERS"])


def host_json(hosts: list[Host]) -> list[dict]:
    return [{"name": h.name, "vtep": h.vtep, "state": h.state, "containers": h.containers,
             "mtu": h.mtu, "api": h.api} for h in hosts]


def _image_or_engine(item: dict) -> str:
    """An engine's endpoint runs no image of vxmesh's: the engine and its container id instead."""
    if item.get("engine"):
        return f"({item['engine']} {item['engine_id'][:12]})"
    return item["image"]


def container_rows(items: list[dict]) -> str:
    rows = [[c["id"][:12], c["name"], _image_or_engine(c), c["host"], command_text(c)[:30],
             status_text(c), ports_text(c), networks_text(c)]
            for c in items]
    return table(rows, ["CONTAINER ID", "NAME", "IMAGE", "HOST", "COMMAND", "STATUS", "PORTS", "NETWORKS"])


def command_text(c: dict) -> str:
    """What was asked on top of the image: the entrypoint given and the command."""
    return " ".join([*(c["entrypoint"] or []), *c["command"]])


def ports_text(c: dict) -> str:
    """Published ports, then the image's exposed ports nothing publishes ("80/tcp"), as Docker."""
    published = {p.rsplit("->", 1)[1] for p in c["ports"]}
    return ", ".join([*c["ports"], *(p for p in c["exposed_ports"] if p not in published)])


def networks_text(c: dict) -> str:
    if c["network_mode"] != "default":
        return c["network_mode"]
    return ",".join(f"{n}:{v['ip']}" for n, v in c["networks"].items())


def status_text(c: dict) -> str:
    if c["state"] == "running":
        health = f" ({c['health']})" if c.get("health") else ""     # as Docker: "Up 5s (healthy)"
        return f"Up {duration(c['started_at'])}{health}"
    if c["state"] == "exited":
        ago = f" {duration(c['finished_at'])} ago" if c["finished_at"] else ""
        return f"Exited ({c['exit_code']}){ago}"
    return c["state"].capitalize()


def duration(t: float) -> str:
    seconds = max(0, int(time.time() - t))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def image_json(image: pb.Image) -> dict:
    """`image inspect`: Docker's field names, the cluster registry's facts."""
    ref = image_ref.parse(image.reference)
    config = image.config
    return {
        "Id": image.id, "RepoTags": [ref.familiar], "RepoDigests": [f"{_repository(ref)}@{image.digest}"],
        "Reference": image.reference, "Created": image.created, "Size": image.size,
        "Architecture": image.architecture, "Os": image.os,
        "Config": {"Entrypoint": list(config.entrypoint) or None, "Cmd": list(config.cmd) or None,
                   "Env": list(config.env), "WorkingDir": config.working_dir, "User": config.user,
                   "ExposedPorts": {p: {} for p in config.exposed_ports}, "Labels": dict(config.labels),
                   "StopSignal": config.stop_signal,
                   # Docker leaves it out when the image has none.
                   **({"Healthcheck": {"Test": list(config.healthcheck_test),
                                       "Interval": config.healthcheck_interval,
                                       "Timeout": config.healthcheck_timeout,
                                       "StartPeriod": config.healthcheck_start_period,
                                       "Retries": config.healthcheck_retries}}
                      if config.healthcheck_test else {})},
    }


def image_rows(images: list[pb.Image]) -> str:
    rows = []
    for image in images:
        ref = image_ref.parse(image.reference)
        rows.append([_repository(ref), ref.tag or "<none>", image.id.removeprefix("sha256:")[:12],
                     _created(image.created), _size(image.size)])
    return table(rows, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"])


def _repository(ref: ImageRef) -> str:
    return ImageRef(ref.registry, ref.repository).familiar


def _created(text: str) -> str:
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return text or "-"
    return f"{duration(when.timestamp())} ago"


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g}{unit}"
    return f"{size}B"