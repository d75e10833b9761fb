"""Typed records shared by the controller, the agent and the CLI.

The code works on these dataclasses. Protobuf appears only at the wire
(`to_wire` / `from_wire`) and JSON only in etcd (`to_json` / `from_json`),
so neither format leaks into the logic. The protobuf module is imported the
first time a record goes to or comes from the wire: a process that only
reads records from files (the container monitor) needs no protobuf at all.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R", bound="Record")


class Record:
    """Conversions every record shares; fields map 1:1 onto the proto message."""

    WIRE: str  # the name of the protobuf message (proto/vxmesh.proto) with the same field names

    def to_wire(self):
        message = _wire_class(type(self))
        scalars = _scalar_fields(type(self))
        if scalars is not None:  # the common case (endpoints, hosts): built in one call
            return message(**{name: getattr(self, name) for name in scalars})
        msg = message()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                target = getattr(msg, f.name)
                for item in value:
                    if isinstance(item, Record):
                        target.append(item.to_wire())
                    else:
                        target.append(item)
            elif isinstance(value, dict):
                getattr(msg, f.name).update(value)
            else:
                setattr(msg, f.name, value)
        return msg

    @classmethod
    def from_wire(cls: type[R], msg) -> R:
        scalars = _scalar_fields(cls)
        if scalars is not None:
            return cls(**{name: getattr(msg, name) for name in scalars})
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = getattr(msg, f.name)
            item_type = _LIST_ITEM_TYPES.get((cls.__name__, f.name))
            if item_type is not None:
                kwargs[f.name] = [item_type.from_wire(v) for v in value]
            elif hasattr(value, "items"):  # protobuf map
                kwargs[f.name] = dict(value)
            elif hasattr(value, "extend"):  # protobuf repeated scalar
                kwargs[f.name] = list(value)
            else:
                kwargs[f.name] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True).encode()

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        kwargs: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in names:
                continue  # written by a newer controller: ignore, don't fail
            item_type = _LIST_ITEM_TYPES.get((cls.__name__, key))
            if item_type is not None:
                value = [item_type.from_dict(v) for v in value]
            kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls: type[R], raw: bytes | str) -> R:
        return cls.from_dict(json.loads(raw))


@dataclass
class Network(Record):
    WIRE = "Network"
    name: str
    subnet: str
    gateway: str
    vni: int
    driver: str = "overlay"
    id: str = ""
    created_at: float = 0.0
    builtin: bool = False
    scope: str = ""            # "global" or "local", as the driver says (proto/vxmesh.proto)
    ip_range: str = ""         # where dynamic addresses come from; "": the whole subnet
    internal: bool = False     # no egress: no gwbridge, no NAT, no default route through it
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint(Record):
    """One row of the MAC/IP -> VTEP table."""
    WIRE = "Endpoint"
    network: str
    container: str
    host: str
    vtep: str
    ip: str
    mac: str
    # For the embedded DNS of the network's other hosts (agent/dns): the
    # container's id, and its aliases on this network separated by spaces
    # (one string keeps the record all scalars, the fast path of a table).
    container_id: str = ""
    aliases: str = ""
    engine: str = ""  # the engine owning it ("docker", "cni"); "" for vxmesh's own
    # Not running, by its host's last report (controller/store/containers.py,
    # put_status): the other hosts' embedded DNS stops answering its names.
    stopped: bool = False


@dataclass
class Attachment(Record):
    WIRE = "Attachment"
    network: str
    ip: str
    mac: str
    aliases: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PortMapping(Record):
    WIRE = "PortMapping"
    protocol: str
    host_port: int
    container_port: int
    # The host port was chosen for it (`-p 80`): a restart may choose another
    # when this one was taken while the container was stopped.
    dynamic: bool = False

    def __str__(self) -> str:
        return f"{self.host_port}->{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class Mount(Record):
    WIRE = "Mount"
    source: str
    target: str
    readonly: bool = False


@dataclass(frozen=True)
class Ulimit(Record):
    """--ulimit NAME=SOFT[:HARD] (proto/run_options.py parses it)."""
    WIRE = "Ulimit"
    name: str          # one of proto.run_options.ULIMIT_NAMES
    soft: int          # -1 = unlimited
    hard: int

    @property
    def text(self) -> str:
        return f"{self.name}={self.soft}:{self.hard}"


@dataclass
class ContainerSpec(Record):
    """The desired container, written by the controller, run by the agent."""
    WIRE = "ContainerSpec"
    id: str
    name: str
    host: str
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    hostname: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    desired: str = "running"
    created_at: float = 0.0
    generation: int = 0
    stop_timeout: int = 10
    network_mode: str = ""     # "" (attachments decide), "host", "none", "container:NAME"
    ports: list[PortMapping] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    memory_bytes: int = 0
    cpus: float = 0.0
    pids_limit: int = 0
    # The image as `run` resolved it in the cluster's registry (proto/vxmesh.proto).
    image: str = ""            # canonical reference
    image_digest: str = ""     # of its manifest: what every start pulls
    image_id: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    # The image's defaults, overridden: `command` is COMMAND (empty: the image's
    # Cmd); `entrypoint` replaces the image's only when `entrypoint_set`.
    entrypoint: list[str] = field(default_factory=list)
    entrypoint_set: bool = False
    working_dir: str = ""
    user: str = ""
    read_only: bool = False
    # Confinement: Docker's defaults unless widened or narrowed.
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    seccomp: str = "default"   # "default", "unconfined" or "profile"
    seccomp_profile: str = ""  # JSON text, for "profile"
    allow_new_privileges: bool = False
    ulimits: list[Ulimit] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)   # --label
    auto_remove: bool = False   # run -d --rm: the controller removes it once it exited
    # A service's task (controller/services/); empty for a container of `run`.
    service: str = ""
    service_id: str = ""
    slot: int = 0
    restarts: int = 0
    restart_policy: str = ""       # proto/run_options.py RESTART_POLICIES; "" is "no"
    restart_max_retries: int = 0
    service_version: int = 0
    health_cmd: str = ""
    health_interval: float = 0.0
    health_timeout: float = 0.0
    health_retries: int = 0
    # An endpoint owned by another engine (proto/vxmesh.proto): nothing to run,
    # only the engine's namespace `sandbox` to wire.
    engine: str = ""
    engine_id: str = ""
    sandbox: str = ""
    interface: str = ""
    engine_endpoint: str = ""
    # run -i / -t: the first process gets a stdin / a pseudo-terminal its agent holds.
    open_stdin: bool = False
    tty: bool = False
    no_healthcheck: bool = False   # --no-healthcheck: not the image's HEALTHCHECK either
    health_start_period: float = 0.0

    @property
    def pinned_image(self) -> str:
        """The reference with its digest: exactly the image `run` resolved."""
        if not self.image_digest or "@" in self.image:
            return self.image
        return f"{self.image}@{self.image_digest}"

    @property
    def networks(self) -> list[str]:
        return [a.network for a in self.attachments]


@dataclass
class ContainerStatus(Record):
    """What the agent observed; `generation` ties it to a spec generation."""
    WIRE = "ContainerStatus"
    name: str
    id: str
    state: str = "created"
    pid: int = 0
    exit_code: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    generation: int = 0
    host: str = ""
    networks: list[str] = field(default_factory=list)
    image_error: bool = False  # the image could not be pulled: `run` removes the container
    oom_killed: bool = False   # the kernel's OOM killer ended it
    restart_count: int = 0     # restarts by its restart policy
    health: str = ""           # "", "starting", "healthy", "unhealthy"


@dataclass
class Host(Record):
    WIRE = "Host"
    name: str
    vtep: str
    api: str = ""
    mtu: int = 1500
    state: str = "down"
    containers: int = 0
    registered_at: float = 0.0
    bridge_subnet: str = ""
    underlay_subnet: str = ""
    gwbridge_subnet: str = ""

    def own_subnets(self) -> dict[str, str]:
        """The subnets the host itself uses, which no network may overlap (its
        containers would lose their way out): what holds each, as an error
        names it, -> the subnet. A host that did not report one has none here."""
        held = (("underlay", self.underlay_subnet), ("gwbridge", self.gwbridge_subnet),
                ("default bridge", self.bridge_subnet))
        return {f"the {what} of host {self.name}": subnet for what, subnet in held if subnet}


@dataclass(frozen=True)
class HostAlive(Record):
    """A host in every table (alive/<name> exists): its VTEP may send VXLAN.
    With `agent_down`, its agent is gone but its VTEP still answers its peers,
    since `since`; otherwise `since` is when it came up (controller/liveness.py)."""
    WIRE = "HostAlive"
    host: str
    agent_down: bool = False
    since: float = 0.0


@dataclass
class Reachability(Record):
    """One agent's last finding of which peers' VTEPs answer its probes."""
    WIRE = "Reachability"
    reporter: str
    reachable: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ResyncRequest(Record):
    """A controller's request that the agent of `host` report every status again."""
    WIRE = "ResyncRequest"
    host: str
    asked_at: float = 0.0


@dataclass
class ControllerInfo(Record):
    """A controller serving now (its key lives while its lease does): what it
    listens on and the etcd cluster it uses, each as host:port."""
    WIRE = "ControllerInfo"
    name: str
    listen: list[str] = field(default_factory=list)
    etcd_client: list[str] = field(default_factory=list)
    etcd_peer: list[str] = field(default_factory=list)


@dataclass
class ServiceSpec(Record):
    """A service: the template of its tasks and how many to keep running
    (controller/services/ reconciles it; proto/vxmesh.proto says each field)."""
    WIRE = "ServiceSpec"
    name: str
    id: str = ""
    image: str = ""
    image_reference: str = ""
    image_digest: str = ""
    image_id: str = ""
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)
    mode: str = "replicated"
    replicas: int = 1
    restart_condition: str = "any"
    restart_max_attempts: int = 0
    restart_delay: float = 1.0
    constraints: list[str] = field(default_factory=list)
    memory_bytes: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    exposed_ports: list[str] = field(default_factory=list)
    endpoint_mode: str = "vip"
    virtual_ips: dict[str, str] = field(default_factory=dict)
    ports: list[PortMapping] = field(default_factory=list)
    publish_mode: str = "ingress"
    version: int = 0
    update_parallelism: int = 1
    update_delay: float = 0.0
    update_state: str = ""
    update_message: str = ""
    stack: str = ""
    health_cmd: str = ""
    health_interval: float = 30.0
    health_timeout: float = 30.0
    health_retries: int = 3
    no_healthcheck: bool = False
    image_health_cmd: str = ""
    image_health_interval: float = 0.0
    image_health_timeout: float = 0.0
    image_health_retries: int = 0
    image_health_start_period: float = 0.0


@dataclass
class ServiceVip(Record):
    """A service's VIP on one network and its running tasks' addresses there."""
    WIRE = "ServiceVip"
    network: str
    service: str
    service_id: str = ""
    vip: str = ""
    backends: list[str] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)


# A host's leg into an overlay network for the routing mesh: an endpoint named
# MESH_LEG_PREFIX + host. No container name starts with "_" (proto/validate.py).
MESH_LEG_PREFIX = "_mesh."


def mesh_leg(host: str) -> str:
    return MESH_LEG_PREFIX + host


_SCALAR_TYPES = frozenset({"str", "int", "float", "bool"})


@functools.cache
def _wire_class(cls: type) -> type:
    from proto import vxmesh_pb2
    return getattr(vxmesh_pb2, cls.WIRE)


@functools.cache
def _scalar_fields(cls: type) -> tuple[str, ...] | None:
    """The field names of a record made only of scalars, else None.

    Tables of 10,000 endpoints are converted at every snapshot: for such
    records the per-field type checks of the general path cost more than
    the conversion itself."""
    fields = dataclasses.fields(cls)
    if all(f.type in _SCALAR_TYPES for f in fields):
        return tuple(f.name for f in fields)
    return None


_LIST_ITEM_TYPES: dict[tuple[str, str], type[Record]] = {
    ("ContainerSpec", "attachments"): Attachment,
    ("ContainerSpec", "ports"): PortMapping,
    ("ContainerSpec", "mounts"): Mount,
    ("ContainerSpec", "ulimits"): Ulimit,
    ("ServiceSpec", "ports"): PortMapping,
    ("ServiceVip", "ports"): PortMapping,
}
