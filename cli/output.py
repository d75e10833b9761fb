"""What the CLI prints: docker-style tables, and the JSON shapes of inspect and ps."""
from __future__ import annotations

import time

from cli.options import format_port
from proto import vxmesh_pb2 as pb
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
        "rootfs": spec.rootfs,
        "mounts": [f"{m.source}:{m.target}{':ro' if m.readonly else ''}" for m in spec.mounts],
        "memory_bytes": spec.memory_bytes, "cpus": spec.cpus, "pids_limit": spec.pids_limit,
    }


def network_json(detail: pb.NetworkDetail) -> dict:
    network = Network.from_wire(detail.network)
    data = dict(network.to_dict())
    data["endpoints"] = [{"container": e.container, "host": e.host, "ip": e.ip, "mac": e.mac}
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


def container_rows(items: list[dict]) -> str:
    rows = [[c["id"][:12], c["name"], c["host"], " ".join(c["command"])[:30],
             status_text(c), ", ".join(c["ports"]), networks_text(c)]
            for c in items]
    return table(rows, ["CONTAINER ID", "NAME", "HOST", "COMMAND", "STATUS", "PORTS", "NETWORKS"])


def networks_text(c: dict) -> str:
    if c["network_mode"] != "default":
        return c["network_mode"]
    return ",".join(f"{n}:{v['ip']}" for n, v in c["networks"].items())


def status_text(c: dict) -> str:
    if c["state"] == "running":
        return f"Up {duration(c['started_at'])}"
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
