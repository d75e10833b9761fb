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


# Docker's time for "never" (Go's zero time), as its inspect prints StartedAt of a container never started.
ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(t: float) -> str:
    """A time as Docker's inspect writes it (UTC, nanoseconds)."""
    if not t:
        return ZERO_TIME
    when = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond * 1000:09d}Z"


def container_inspect_json(detail: pb.ContainerDetail, networks: dict[str, Network]) -> dict:
    """`inspect`: Docker's structure and field names for what Docker has; what only
    vxmesh knows (the host, the image's reference and digest, the engine owning an
    endpoint, a service's task) under "Vxmesh". `networks`: for each attachment's
    gateway, prefix length and network id."""
    spec = ContainerSpec.from_wire(detail.spec)
    status = ContainerStatus.from_wire(detail.status)
    process = [*(spec.entrypoint if spec.entrypoint_set else []), *spec.command]
    state = {"Status": status.state, "Running": status.state == "running", "Paused": False,
             "Restarting": False, "OOMKilled": status.oom_killed, "Dead": False, "Pid": status.pid,
             "ExitCode": status.exit_code, "Error": status.error, "StartedAt": rfc3339(status.started_at),
             "FinishedAt": rfc3339(status.finished_at)}
    if spec.health_cmd:
        state["Health"] = {"Status": status.health or "starting"}
    published: dict[str, list[dict] | None] = {}
    for port in spec.ports:
        published.setdefault(f"{port.container_port}/{port.protocol}", []).append(
            {"HostIp": "0.0.0.0", "HostPort": str(port.host_port)})
    return {
        "Id": spec.id, "Created": rfc3339(spec.created_at),
        "Path": process[0] if process else "", "Args": process[1:],
        "State": state, "Image": spec.image_id, "Name": f"/{spec.name}", "RestartCount": status.restart_count,
        "HostConfig": {
            "NetworkMode": _network_mode(spec),
            "RestartPolicy": {"Name": spec.restart_policy or "no", "MaximumRetryCount": spec.restart_max_retries},
            "PortBindings": _port_bindings(spec),
            "AutoRemove": spec.auto_remove,
            "Binds": [f"{m.source}:{m.target}{':ro' if m.readonly else ''}" for m in spec.mounts] or None,
            "Memory": spec.memory_bytes, "NanoCpus": int(round(spec.cpus * 1e9)),
            "PidsLimit": spec.pids_limit or None,
            "CapAdd": spec.cap_add or None, "CapDrop": spec.cap_drop or None, "Privileged": spec.privileged,
            "ReadonlyRootfs": spec.read_only, "SecurityOpt": security_opt(spec) or None,
            "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits] or None,
        },
        "Mounts": [{"Type": "bind", "Source": m.source, "Destination": m.target, "Mode": "ro" if m.readonly else "",
                    "RW": not m.readonly, "Propagation": "rprivate"} for m in spec.mounts],
        "Config": {
            "Hostname": spec.hostname or spec.name, "User": spec.user, "Tty": spec.tty, "OpenStdin": spec.open_stdin,
            "Env": [f"{k}={v}" for k, v in spec.env.items()], "Cmd": spec.command or None,
            "Image": familiar(spec.image), "WorkingDir": spec.working_dir,
            "Entrypoint": list(spec.entrypoint) if spec.entrypoint_set else None,   # [] : cleared
            "Labels": spec.labels, "ExposedPorts": {p: {} for p in spec.exposed_ports} or None,
        },
        "NetworkSettings": {
            "Ports": {**published, **{p: None for p in spec.exposed_ports if p not in published}},
            "Networks": {a.network: _endpoint_settings(a, networks.get(a.network)) for a in spec.attachments},
        },
        "Vxmesh": {
            "Host": spec.host, "ImageReference": spec.image, "ImageDigest": spec.image_digest,
            "Engine": spec.engine, "EngineId": spec.engine_id, "Service": spec.service,
        },
    }


def _port_bindings(spec: ContainerSpec) -> dict[str, list[dict]]:
    """What -p asked for: the host port given, "" where one was chosen."""
    bindings: dict[str, list[dict]] = {}
    for port in spec.ports:
        bindings.setdefault(f"{port.container_port}/{port.protocol}", []).append(
            {"HostIp": "", "HostPort": "" if port.dynamic else str(port.host_port)})
    return bindings


def _network_mode(spec: ContainerSpec) -> str:
    """HostConfig.NetworkMode as Docker writes it: the mode, or the first network given."""
    if spec.network_mode:
        return spec.network_mode
    return spec.attachments[0].network if spec.attachments else "default"


def _endpoint_settings(attachment, network: Network | None) -> dict:
    gateway, prefix = "", 0
    if network is not None and network.subnet:
        gateway = network.gateway
        prefix = int(network.subnet.rsplit("/", 1)[1])
    return {"IPAMConfig": None, "Aliases": list(attachment.aliases) or None,
            "NetworkID": network.id if network is not None else "", "Gateway": gateway,
            "IPAddress": attachment.ip, "IPPrefixLen": prefix, "MacAddress": attachment.mac}


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
    """`network inspect`: Docker's structure and field names; what only vxmesh knows
    (the VNI, each container's host and engine) under "Vxmesh"."""
    network = Network.from_wire(detail.network)
    endpoints = [Endpoint.from_wire(x) for x in detail.endpoints]
    prefix = "/" + network.subnet.rsplit("/", 1)[1] if network.subnet else ""
    config = {"Subnet": network.subnet, "Gateway": network.gateway}
    if network.ip_range:
        config["IPRange"] = network.ip_range
    options = {}
    if network.vni:
        options["com.docker.network.driver.overlay.vxlanid_list"] = str(network.vni)
    return {
        "Name": network.name, "Id": network.id, "Created": rfc3339(network.created_at),
        "Scope": "swarm" if network.scope == "global" else network.scope or "local", "Driver": network.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": [config] if network.subnet else []},
        "Internal": network.internal, "Attachable": network.attachable, "Ingress": False,
        "Containers": {_endpoint_key(e): {"Name": e.container, "MacAddress": e.mac,
                                          "IPv4Address": f"{e.ip}{prefix}" if e.ip else "", "IPv6Address": ""}
                       for e in endpoints},
        "Options": options, "Labels": network.labels,
        "Vxmesh": {
            "VNI": network.vni, "Builtin": network.builtin,
            "Containers": {_endpoint_key(e): {"Host": e.host, "Engine": e.engine} for e in endpoints},
        },
    }


def _endpoint_key(endpoint: Endpoint) -> str:
    """Docker keys a network's containers by id; an endpoint not yet knowing it, by name."""
    return endpoint.container_id or endpoint.container


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
                   "StopSignal": config.stop_signal},
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