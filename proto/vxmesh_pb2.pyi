from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Network(_message.Message):
    __slots__ = ("name", "driver", "subnet", "gateway", "vni", "id", "created_at", "builtin", "scope", "ip_range", "internal", "attachable", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    IP_RANGE_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    ATTACHABLE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    driver: str
    subnet: str
    gateway: str
    vni: int
    id: str
    created_at: float
    builtin: bool
    scope: str
    ip_range: str
    internal: bool
    attachable: bool
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., driver: _Optional[str] = ..., subnet: _Optional[str] = ..., gateway: _Optional[str] = ..., vni: _Optional[int] = ..., id: _Optional[str] = ..., created_at: _Optional[float] = ..., builtin: _Optional[bool] = ..., scope: _Optional[str] = ..., ip_range: _Optional[str] = ..., internal: _Optional[bool] = ..., attachable: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("network", "container", "host", "vtep", "ip", "mac", "container_id", "aliases", "engine", "stopped")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    VTEP_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    network: str
    container: str
    host: str
    vtep: str
    ip: str
    mac: str
    container_id: str
    aliases: str
    engine: str
    stopped: bool
    def __init__(self, network: _Optional[str] = ..., container: _Optional[str] = ..., host: _Optional[str] = ..., vtep: _Optional[str] = ..., ip: _Optional[str] = ..., mac: _Optional[str] = ..., container_id: _Optional[str] = ..., aliases: _Optional[str] = ..., engine: _Optional[str] = ..., stopped: _Optional[bool] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("network", "ip", "mac", "aliases")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    network: str
    ip: str
    mac: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, network: _Optional[str] = ..., ip: _Optional[str] = ..., mac: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class PortMapping(_message.Message):
    __slots__ = ("protocol", "host_port", "container_port", "dynamic")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    HOST_PORT_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_PORT_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_FIELD_NUMBER: _ClassVar[int]
    protocol: str
    host_port: int
    container_port: int
    dynamic: bool
    def __init__(self, protocol: _Optional[str] = ..., host_port: _Optional[int] = ..., container_port: _Optional[int] = ..., dynamic: _Optional[bool] = ...) -> None: ...

class Mount(_message.Message):
    __slots__ = ("source", "target", "readonly")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    READONLY_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    readonly: bool
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., readonly: _Optional[bool] = ...) -> None: ...

class Ulimit(_message.Message):
    __slots__ = ("name", "soft", "hard")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOFT_FIELD_NUMBER: _ClassVar[int]
    HARD_FIELD_NUMBER: _ClassVar[int]
    name: str
    soft: int
    hard: int
    def __init__(self, name: _Optional[str] = ..., soft: _Optional[int] = ..., hard: _Optional[int] = ...) -> None: ...

class ContainerSpec(_message.Message):
    __slots__ = ("id", "name", "host", "command", "env", "hostname", "attachments", "desired", "created_at", "generation", "stop_timeout", "network_mode", "ports", "mounts", "memory_bytes", "cpus", "pids_limit", "image", "image_digest", "image_id", "exposed_ports", "entrypoint", "entrypoint_set", "working_dir", "user", "read_only", "cap_add", "cap_drop", "privileged", "seccomp", "seccomp_profile", "allow_new_privileges", "ulimits", "labels", "auto_remove", "service", "service_id", "slot", "restarts", "restart_policy", "restart_max_retries", "service_version", "health_cmd", "health_interval", "health_timeout", "health_retries", "engine", "engine_id", "sandbox", "interface", "engine_endpoint", "open_stdin", "tty", "no_healthcheck", "health_start_period")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    STOP_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    NETWORK_MODE_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    MOUNTS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    PIDS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_PORTS_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_SET_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    CAP_ADD_FIELD_NUMBER: _ClassVar[int]
    CAP_DROP_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGED_FIELD_NUMBER: _ClassVar[int]
    SECCOMP_FIELD_NUMBER: _ClassVar[int]
    SECCOMP_PROFILE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_NEW_PRIVILEGES_FIELD_NUMBER: _ClassVar[int]
    ULIMITS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    AUTO_REMOVE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    RESTART_POLICY_FIELD_NUMBER: _ClassVar[int]
    RESTART_MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    SERVICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_CMD_FIELD_NUMBER: _ClassVar[int]
    HEALTH_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    HEALTH_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_RETRIES_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    OPEN_STDIN_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    NO_HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    HEALTH_START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    host: str
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    hostname: str
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    desired: str
    created_at: float
    generation: int
    stop_timeout: int
    network_mode: str
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    mounts: _containers.RepeatedCompositeFieldContainer[Mount]
    memory_bytes: int
    cpus: float
    pids_limit: int
    image: str
    image_digest: str
    image_id: str
    exposed_ports: _containers.RepeatedScalarFieldContainer[str]
    entrypoint: _containers.RepeatedScalarFieldContainer[str]
    entrypoint_set: bool
    working_dir: str
    user: str
    read_only: bool
    cap_add: _containers.RepeatedScalarFieldContainer[str]
    cap_drop: _containers.RepeatedScalarFieldContainer[str]
    privileged: bool
    seccomp: str
    seccomp_profile: str
    allow_new_privileges: bool
    ulimits: _containers.RepeatedCompositeFieldContainer[Ulimit]
    labels: _containers.ScalarMap[str, str]
    auto_remove: bool
    service: str
    service_id: str
    slot: int
    restarts: int
    restart_policy: str
    restart_max_retries: int
    service_version: int
    health_cmd: str
    health_interval: float
    health_timeout: float
    health_retries: int
    engine: str
    engine_id: str
    sandbox: str
    interface: str
    engine_endpoint: str
    open_stdin: bool
    tty: bool
    no_healthcheck: bool
    health_start_period: float
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., hostname: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., desired: _Optional[str] = ..., created_at: _Optional[float] = ..., generation: _Optional[int] = ..., stop_timeout: _Optional[int] = ..., network_mode: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., mounts: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ..., memory_bytes: _Optional[int] = ..., cpus: _Optional[float] = ..., pids_limit: _Optional[int] = ..., image: _Optional[str] = ..., image_digest: _Optional[str] = ..., image_id: _Optional[str] = ..., exposed_ports: _Optional[_Iterable[str]] = ..., entrypoint: _Optional[_Iterable[str]] = ..., entrypoint_set: _Optional[bool] = ..., working_dir: _Optional[str] = ..., user: _Optional[str] = ..., read_only: _Optional[bool] = ..., cap_add: _Optional[_Iterable[str]] = ..., cap_drop: _Optional[_Iterable[str]] = ..., privileged: _Optional[bool] = ..., seccomp: _Optional[str] = ..., seccomp_profile: _Optional[str] = ..., allow_new_privileges: _Optional[bool] = ..., ulimits: _Optional[_Iterable[_Union[Ulimit, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., auto_remove: _Optional[bool] = ..., service: _Optional[str] = ..., service_id: _Optional[str] = ..., slot: _Optional[int] = ..., restarts: _Optional[int] = ..., restart_policy: _Optional[str] = ..., restart_max_retries: _Optional[int] = ..., service_version: _Optional[int] = ..., health_cmd: _Optional[str] = ..., health_interval: _Optional[float] = ..., health_timeout: _Optional[float] = ..., health_retries: _Optional[int] = ..., engine: _Optional[str] = ..., engine_id: _Optional[str] = ..., sandbox: _Optional[str] = ..., interface: _Optional[str] = ..., engine_endpoint: _Optional[str] = ..., open_stdin: _Optional[bool] = ..., tty: _Optional[bool] = ..., no_healthcheck: _Optional[bool] = ..., health_start_period: _Optional[float] = ...) -> None: ...

class ContainerStatus(_message.Message):
    __slots__ = ("name", "id", "state", "pid", "exit_code", "started_at", "finished_at", "error", "generation", "host", "networks", "image_error", "oom_killed", "restart_count", "health")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ERROR_FIELD_NUMBER: _ClassVar[int]
    OOM_KILLED_FIELD_NUMBER: _ClassVar[int]
    RESTART_COUNT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    state: str
    pid: int
    exit_code: int
    started_at: float
    finished_at: float
    error: str
    generation: int
    host: str
    networks: _containers.RepeatedScalarFieldContainer[str]
    image_error: bool
    oom_killed: bool
    restart_count: int
    health: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., state: _Optional[str] = ..., pid: _Optional[int] = ..., exit_code: _Optional[int] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., error: _Optional[str] = ..., generation: _Optional[int] = ..., host: _Optional[str] = ..., networks: _Optional[_Iterable[str]] = ..., image_error: _Optional[bool] = ..., oom_killed: _Optional[bool] = ..., restart_count: _Optional[int] = ..., health: _Optional[str] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("name", "vtep", "api", "mtu", "state", "containers", "registered_at", "bridge_subnet", "underlay_subnet", "gwbridge_subnet")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VTEP_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_SUBNET_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_SUBNET_FIELD_NUMBER: _ClassVar[int]
    GWBRIDGE_SUBNET_FIELD_NUMBER: _ClassVar[int]
    name: str
    vtep: str
    api: str
    mtu: int
    state: str
    containers: int
    registered_at: float
    bridge_subnet: str
    underlay_subnet: str
    gwbridge_subnet: str
    def __init__(self, name: _Optional[str] = ..., vtep: _Optional[str] = ..., api: _Optional[str] = ..., mtu: _Optional[int] = ..., state: _Optional[str] = ..., containers: _Optional[int] = ..., registered_at: _Optional[float] = ..., bridge_subnet: _Optional[str] = ..., underlay_subnet: _Optional[str] = ..., gwbridge_subnet: _Optional[str] = ...) -> None: ...

class HostAlive(_message.Message):
    __slots__ = ("host", "agent_down", "since")
    HOST_FIELD_NUMBER: _ClassVar[int]
    AGENT_DOWN_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    host: str
    agent_down: bool
    since: float
    def __init__(self, host: _Optional[str] = ..., agent_down: _Optional[bool] = ..., since: _Optional[float] = ...) -> None: ...

class Reachability(_message.Message):
    __slots__ = ("reporter", "reachable", "unreachable")
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_FIELD_NUMBER: _ClassVar[int]
    reporter: str
    reachable: _containers.RepeatedScalarFieldContainer[str]
    unreachable: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reporter: _Optional[str] = ..., reachable: _Optional[_Iterable[str]] = ..., unreachable: _Optional[_Iterable[str]] = ...) -> None: ...

class ControllerInfo(_message.Message):
    __slots__ = ("name", "listen", "etcd_client", "etcd_peer")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LISTEN_FIELD_NUMBER: _ClassVar[int]
    ETCD_CLIENT_FIELD_NUMBER: _ClassVar[int]
    ETCD_PEER_FIELD_NUMBER: _ClassVar[int]
    name: str
    listen: _containers.RepeatedScalarFieldContainer[str]
    etcd_client: _containers.RepeatedScalarFieldContainer[str]
    etcd_peer: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., listen: _Optional[_Iterable[str]] = ..., etcd_client: _Optional[_Iterable[str]] = ..., etcd_peer: _Optional[_Iterable[str]] = ...) -> None: ...

class ResyncRequest(_message.Message):
    __slots__ = ("host", "asked_at")
    HOST_FIELD_NUMBER: _ClassVar[int]
    ASKED_AT_FIELD_NUMBER: _ClassVar[int]
    host: str
    asked_at: float
    def __init__(self, host: _Optional[str] = ..., asked_at: _Optional[float] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("key", "network", "endpoint", "container", "host", "alive", "controller", "resync", "vip", "deleted")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FIELD_NUMBER: _ClassVar[int]
    VIP_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    key: str
    network: Network
    endpoint: Endpoint
    container: ContainerSpec
    host: Host
    alive: HostAlive
    controller: ControllerInfo
    resync: ResyncRequest
    vip: ServiceVip
    deleted: bool
    def __init__(self, key: _Optional[str] = ..., network: _Optional[_Union[Network, _Mapping]] = ..., endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., container: _Optional[_Union[ContainerSpec, _Mapping]] = ..., host: _Optional[_Union[Host, _Mapping]] = ..., alive: _Optional[_Union[HostAlive, _Mapping]] = ..., controller: _Optional[_Union[ControllerInfo, _Mapping]] = ..., resync: _Optional[_Union[ResyncRequest, _Mapping]] = ..., vip: _Optional[_Union[ServiceVip, _Mapping]] = ..., deleted: _Optional[bool] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("host", "resume_revision", "networks", "containers")
    HOST_FIELD_NUMBER: _ClassVar[int]
    RESUME_REVISION_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    host: Host
    resume_revision: int
    networks: _containers.RepeatedScalarFieldContainer[str]
    containers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., resume_revision: _Optional[int] = ..., networks: _Optional[_Iterable[str]] = ..., containers: _Optional[_Iterable[str]] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("hello", "status", "heartbeat", "reachability")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REACHABILITY_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    status: ContainerStatus
    heartbeat: Heartbeat
    reachability: Reachability
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., status: _Optional[_Union[ContainerStatus, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., reachability: _Optional[_Union[Reachability, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("applied_revision",)
    APPLIED_REVISION_FIELD_NUMBER: _ClassVar[int]
    applied_revision: int
    def __init__(self, applied_revision: _Optional[int] = ...) -> None: ...

class ViewUpdate(_message.Message):
    __slots__ = ("revision", "snapshot", "changes")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    revision: int
    snapshot: bool
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    def __init__(self, revision: _Optional[int] = ..., snapshot: _Optional[bool] = ..., changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ...) -> None: ...

class ControllerMessage(_message.Message):
    __slots__ = ("update", "heartbeat")
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    update: ViewUpdate
    heartbeat: Heartbeat
    def __init__(self, update: _Optional[_Union[ViewUpdate, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class ExecRequest(_message.Message):
    __slots__ = ("container", "command", "env", "tty", "rows", "cols", "first_process")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    FIRST_PROCESS_FIELD_NUMBER: _ClassVar[int]
    container: str
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    tty: bool
    rows: int
    cols: int
    first_process: bool
    def __init__(self, container: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., tty: _Optional[bool] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., first_process: _Optional[bool] = ...) -> None: ...

class ExecInput(_message.Message):
    __slots__ = ("start", "stdin", "stdin_closed", "rows", "cols")
    START_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    STDIN_CLOSED_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    start: ExecRequest
    stdin: bytes
    stdin_closed: bool
    rows: int
    cols: int
    def __init__(self, start: _Optional[_Union[ExecRequest, _Mapping]] = ..., stdin: _Optional[bytes] = ..., stdin_closed: _Optional[bool] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class ExecOutput(_message.Message):
    __slots__ = ("stdout", "stderr", "exited", "exit_code")
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    stdout: bytes
    stderr: bytes
    exited: bool
    exit_code: int
    def __init__(self, stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., exited: _Optional[bool] = ..., exit_code: _Optional[int] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("container", "follow", "tail", "wait_start")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    WAIT_START_FIELD_NUMBER: _ClassVar[int]
    container: str
    follow: bool
    tail: str
    wait_start: bool
    def __init__(self, container: _Optional[str] = ..., follow: _Optional[bool] = ..., tail: _Optional[str] = ..., wait_start: _Optional[bool] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class TablesRequest(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: str
    def __init__(self, network: _Optional[str] = ...) -> None: ...

class TableEntry(_message.Message):
    __slots__ = ("network", "vni", "mac", "ip", "vtep")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    VTEP_FIELD_NUMBER: _ClassVar[int]
    network: str
    vni: int
    mac: str
    ip: str
    vtep: str
    def __init__(self, network: _Optional[str] = ..., vni: _Optional[int] = ..., mac: _Optional[str] = ..., ip: _Optional[str] = ..., vtep: _Optional[str] = ...) -> None: ...

class TablesReply(_message.Message):
    __slots__ = ("host", "entries")
    HOST_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    host: str
    entries: _containers.RepeatedCompositeFieldContainer[TableEntry]
    def __init__(self, host: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[TableEntry, _Mapping]]] = ...) -> None: ...

class KillRequest(_message.Message):
    __slots__ = ("container", "signal")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    container: str
    signal: int
    def __init__(self, container: _Optional[str] = ..., signal: _Optional[int] = ...) -> None: ...

class CreateNetworkRequest(_message.Message):
    __slots__ = ("name", "driver", "subnet", "gateway", "vni", "options", "request_id", "ip_range", "internal", "attachable", "labels")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IP_RANGE_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    ATTACHABLE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    driver: str
    subnet: str
    gateway: str
    vni: int
    options: _containers.ScalarMap[str, str]
    request_id: str
    ip_range: str
    internal: bool
    attachable: bool
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., driver: _Optional[str] = ..., subnet: _Optional[str] = ..., gateway: _Optional[str] = ..., vni: _Optional[int] = ..., options: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., ip_range: _Optional[str] = ..., internal: _Optional[bool] = ..., attachable: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class NameRequest(_message.Message):
    __slots__ = ("name", "force", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    request_id: str
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class NetworkDetail(_message.Message):
    __slots__ = ("network", "endpoints")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    network: Network
    endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    def __init__(self, network: _Optional[_Union[Network, _Mapping]] = ..., endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ...) -> None: ...

class NetworkList(_message.Message):
    __slots__ = ("networks",)
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[Network]
    def __init__(self, networks: _Optional[_Iterable[_Union[Network, _Mapping]]] = ...) -> None: ...

class HostList(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("name", "host", "networks", "hostname", "env", "command", "ports", "mounts", "memory_bytes", "cpus", "pids_limit", "image", "entrypoint", "entrypoint_set", "working_dir", "user", "read_only", "cap_add", "cap_drop", "privileged", "seccomp", "seccomp_profile", "allow_new_privileges", "ulimits", "request_id", "aliases", "ip", "publish_all", "expose", "labels", "auto_remove", "detach", "restart_policy", "restart_max_retries", "interactive", "tty", "no_healthcheck")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    MOUNTS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    PIDS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_SET_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    CAP_ADD_FIELD_NUMBER: _ClassVar[int]
    CAP_DROP_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGED_FIELD_NUMBER: _ClassVar[int]
    SECCOMP_FIELD_NUMBER: _ClassVar[int]
    SECCOMP_PROFILE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_NEW_PRIVILEGES_FIELD_NUMBER: _ClassVar[int]
    ULIMITS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_ALL_FIELD_NUMBER: _ClassVar[int]
    EXPOSE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    AUTO_REMOVE_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    RESTART_POLICY_FIELD_NUMBER: _ClassVar[int]
    RESTART_MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    INTERACTIVE_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    NO_HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    networks: _containers.RepeatedScalarFieldContainer[str]
    hostname: str
    env: _containers.ScalarMap[str, str]
    command: _containers.RepeatedScalarFieldContainer[str]
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    mounts: _containers.RepeatedCompositeFieldContainer[Mount]
    memory_bytes: int
    cpus: float
    pids_limit: int
    image: str
    entrypoint: _containers.RepeatedScalarFieldContainer[str]
    entrypoint_set: bool
    working_dir: str
    user: str
    read_only: bool
    cap_add: _containers.RepeatedScalarFieldContainer[str]
    cap_drop: _containers.RepeatedScalarFieldContainer[str]
    privileged: bool
    seccomp: str
    seccomp_profile: str
    allow_new_privileges: bool
    ulimits: _containers.RepeatedCompositeFieldContainer[Ulimit]
    request_id: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    ip: str
    publish_all: bool
    expose: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    auto_remove: bool
    detach: bool
    restart_policy: str
    restart_max_retries: int
    interactive: bool
    tty: bool
    no_healthcheck: bool
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., networks: _Optional[_Iterable[str]] = ..., hostname: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., command: _Optional[_Iterable[str]] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., mounts: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ..., memory_bytes: _Optional[int] = ..., cpus: _Optional[float] = ..., pids_limit: _Optional[int] = ..., image: _Optional[str] = ..., entrypoint: _Optional[_Iterable[str]] = ..., entrypoint_set: _Optional[bool] = ..., working_dir: _Optional[str] = ..., user: _Optional[str] = ..., read_only: _Optional[bool] = ..., cap_add: _Optional[_Iterable[str]] = ..., cap_drop: _Optional[_Iterable[str]] = ..., privileged: _Optional[bool] = ..., seccomp: _Optional[str] = ..., seccomp_profile: _Optional[str] = ..., allow_new_privileges: _Optional[bool] = ..., ulimits: _Optional[_Iterable[_Union[Ulimit, _Mapping]]] = ..., request_id: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., ip: _Optional[str] = ..., publish_all: _Optional[bool] = ..., expose: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., auto_remove: _Optional[bool] = ..., detach: _Optional[bool] = ..., restart_policy: _Optional[str] = ..., restart_max_retries: _Optional[int] = ..., interactive: _Optional[bool] = ..., tty: _Optional[bool] = ..., no_healthcheck: _Optional[bool] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("network", "container", "request_id", "aliases", "ip")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    network: str
    container: str
    request_id: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    ip: str
    def __init__(self, network: _Optional[str] = ..., container: _Optional[str] = ..., request_id: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., ip: _Optional[str] = ...) -> None: ...

class ContainerDetail(_message.Message):
    __slots__ = ("spec", "status")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    spec: ContainerSpec
    status: ContainerStatus
    def __init__(self, spec: _Optional[_Union[ContainerSpec, _Mapping]] = ..., status: _Optional[_Union[ContainerStatus, _Mapping]] = ...) -> None: ...

class ListContainersRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class ContainerList(_message.Message):
    __slots__ = ("containers",)
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedCompositeFieldContainer[ContainerDetail]
    def __init__(self, containers: _Optional[_Iterable[_Union[ContainerDetail, _Mapping]]] = ...) -> None: ...

class StopRequest(_message.Message):
    __slots__ = ("name", "timeout", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    timeout: int
    request_id: str
    def __init__(self, name: _Optional[str] = ..., timeout: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class HostTablesRequest(_message.Message):
    __slots__ = ("host", "network")
    HOST_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    host: str
    network: str
    def __init__(self, host: _Optional[str] = ..., network: _Optional[str] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthReply(_message.Message):
    __slots__ = ("healthy", "revision", "detail", "snapshots_served", "resumes_served", "resyncs_served", "agents_connected")
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_SERVED_FIELD_NUMBER: _ClassVar[int]
    RESUMES_SERVED_FIELD_NUMBER: _ClassVar[int]
    RESYNCS_SERVED_FIELD_NUMBER: _ClassVar[int]
    AGENTS_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    healthy: bool
    revision: int
    detail: str
    snapshots_served: int
    resumes_served: int
    resyncs_served: int
    agents_connected: int
    def __init__(self, healthy: _Optional[bool] = ..., revision: _Optional[int] = ..., detail: _Optional[str] = ..., snapshots_served: _Optional[int] = ..., resumes_served: _Optional[int] = ..., resyncs_served: _Optional[int] = ..., agents_connected: _Optional[int] = ...) -> None: ...

class EngineAttachRequest(_message.Message):
    __slots__ = ("host", "engine", "network", "ip", "mac", "engine_id", "sandbox", "ports", "aliases")
    HOST_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    host: str
    engine: str
    network: str
    ip: str
    mac: str
    engine_id: str
    sandbox: str
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, host: _Optional[str] = ..., engine: _Optional[str] = ..., network: _Optional[str] = ..., ip: _Optional[str] = ..., mac: _Optional[str] = ..., engine_id: _Optional[str] = ..., sandbox: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class EngineJoinRequest(_message.Message):
    __slots__ = ("name", "engine_id", "sandbox", "interface", "engine_endpoint", "ports", "engine_name", "engine_aliases")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ALIASES_FIELD_NUMBER: _ClassVar[int]
    name: str
    engine_id: str
    sandbox: str
    interface: str
    engine_endpoint: str
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    engine_name: str
    engine_aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., engine_id: _Optional[str] = ..., sandbox: _Optional[str] = ..., interface: _Optional[str] = ..., engine_endpoint: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., engine_name: _Optional[str] = ..., engine_aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class EngineNetworkRequest(_message.Message):
    __slots__ = ("name", "subnet")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    name: str
    subnet: str
    def __init__(self, name: _Optional[str] = ..., subnet: _Optional[str] = ...) -> None: ...

class EngineListRequest(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: str
    def __init__(self, host: _Optional[str] = ...) -> None: ...

class ContainerSpecList(_message.Message):
    __slots__ = ("specs",)
    SPECS_FIELD_NUMBER: _ClassVar[int]
    specs: _containers.RepeatedCompositeFieldContainer[ContainerSpec]
    def __init__(self, specs: _Optional[_Iterable[_Union[ContainerSpec, _Mapping]]] = ...) -> None: ...

class ServiceSpec(_message.Message):
    __slots__ = ("name", "id", "image", "image_reference", "image_digest", "image_id", "command", "env", "networks", "mode", "replicas", "restart_condition", "restart_max_attempts", "restart_delay", "constraints", "memory_bytes", "created_at", "updated_at", "exposed_ports", "endpoint_mode", "virtual_ips", "ports", "publish_mode", "version", "update_parallelism", "update_delay", "update_state", "update_message", "stack", "health_cmd", "health_interval", "health_timeout", "health_retries", "no_healthcheck", "image_health_cmd", "image_health_interval", "image_health_timeout", "image_health_retries", "image_health_start_period")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class VirtualIpsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    RESTART_CONDITION_FIELD_NUMBER: _ClassVar[int]
    RESTART_MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RESTART_DELAY_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_PORTS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_MODE_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_IPS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MODE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_DELAY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    HEALTH_CMD_FIELD_NUMBER: _ClassVar[int]
    HEALTH_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    HEALTH_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_RETRIES_FIELD_NUMBER: _ClassVar[int]
    NO_HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEALTH_CMD_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEALTH_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEALTH_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEALTH_RETRIES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEALTH_START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    image: str
    image_reference: str
    image_digest: str
    image_id: str
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    networks: _containers.RepeatedScalarFieldContainer[str]
    mode: str
    replicas: int
    restart_condition: str
    restart_max_attempts: int
    restart_delay: float
    constraints: _containers.RepeatedScalarFieldContainer[str]
    memory_bytes: int
    created_at: float
    updated_at: float
    exposed_ports: _containers.RepeatedScalarFieldContainer[str]
    endpoint_mode: str
    virtual_ips: _containers.ScalarMap[str, str]
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    publish_mode: str
    version: int
    update_parallelism: int
    update_delay: float
    update_state: str
    update_message: str
    stack: str
    health_cmd: str
    health_interval: float
    health_timeout: float
    health_retries: int
    no_healthcheck: bool
    image_health_cmd: str
    image_health_interval: float
    image_health_timeout: float
    image_health_retries: int
    image_health_start_period: float
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., image: _Optional[str] = ..., image_reference: _Optional[str] = ..., image_digest: _Optional[str] = ..., image_id: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., networks: _Optional[_Iterable[str]] = ..., mode: _Optional[str] = ..., replicas: _Optional[int] = ..., restart_condition: _Optional[str] = ..., restart_max_attempts: _Optional[int] = ..., restart_delay: _Optional[float] = ..., constraints: _Optional[_Iterable[str]] = ..., memory_bytes: _Optional[int] = ..., created_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., exposed_ports: _Optional[_Iterable[str]] = ..., endpoint_mode: _Optional[str] = ..., virtual_ips: _Optional[_Mapping[str, str]] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., publish_mode: _Optional[str] = ..., version: _Optional[int] = ..., update_parallelism: _Optional[int] = ..., update_delay: _Optional[float] = ..., update_state: _Optional[str] = ..., update_message: _Optional[str] = ..., stack: _Optional[str] = ..., health_cmd: _Optional[str] = ..., health_interval: _Optional[float] = ..., health_timeout: _Optional[float] = ..., health_retries: _Optional[int] = ..., no_healthcheck: _Optional[bool] = ..., image_health_cmd: _Optional[str] = ..., image_health_interval: _Optional[float] = ..., image_health_timeout: _Optional[float] = ..., image_health_retries: _Optional[int] = ..., image_health_start_period: _Optional[float] = ...) -> None: ...

class UpdateServiceRequest(_message.Message):
    __slots__ = ("name", "image", "env_add", "env_rm", "command_set", "command", "replicas", "update_parallelism", "update_delay", "network_add", "network_rm", "publish_add", "publish_rm", "constraint_add", "constraint_rm")
    class EnvAddEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ENV_ADD_FIELD_NUMBER: _ClassVar[int]
    ENV_RM_FIELD_NUMBER: _ClassVar[int]
    COMMAND_SET_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_DELAY_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ADD_FIELD_NUMBER: _ClassVar[int]
    NETWORK_RM_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_ADD_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_RM_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINT_ADD_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINT_RM_FIELD_NUMBER: _ClassVar[int]
    name: str
    image: str
    env_add: _containers.ScalarMap[str, str]
    env_rm: _containers.RepeatedScalarFieldContainer[str]
    command_set: bool
    command: _containers.RepeatedScalarFieldContainer[str]
    replicas: int
    update_parallelism: int
    update_delay: float
    network_add: _containers.RepeatedScalarFieldContainer[str]
    network_rm: _containers.RepeatedScalarFieldContainer[str]
    publish_add: _containers.RepeatedCompositeFieldContainer[PortMapping]
    publish_rm: _containers.RepeatedCompositeFieldContainer[PortMapping]
    constraint_add: _containers.RepeatedScalarFieldContainer[str]
    constraint_rm: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., image: _Optional[str] = ..., env_add: _Optional[_Mapping[str, str]] = ..., env_rm: _Optional[_Iterable[str]] = ..., command_set: _Optional[bool] = ..., command: _Optional[_Iterable[str]] = ..., replicas: _Optional[int] = ..., update_parallelism: _Optional[int] = ..., update_delay: _Optional[float] = ..., network_add: _Optional[_Iterable[str]] = ..., network_rm: _Optional[_Iterable[str]] = ..., publish_add: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., publish_rm: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., constraint_add: _Optional[_Iterable[str]] = ..., constraint_rm: _Optional[_Iterable[str]] = ...) -> None: ...

class ServiceVip(_message.Message):
    __slots__ = ("network", "service", "service_id", "vip", "backends", "ports")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    VIP_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    network: str
    service: str
    service_id: str
    vip: str
    backends: _containers.RepeatedScalarFieldContainer[str]
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    def __init__(self, network: _Optional[str] = ..., service: _Optional[str] = ..., service_id: _Optional[str] = ..., vip: _Optional[str] = ..., backends: _Optional[_Iterable[str]] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ...) -> None: ...

class ServiceTask(_message.Message):
    __slots__ = ("name", "service", "slot", "host", "state", "exit_code", "error", "restarts", "started_at", "addresses", "version", "health")
    class AddressesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    service: str
    slot: int
    host: str
    state: str
    exit_code: int
    error: str
    restarts: int
    started_at: float
    addresses: _containers.ScalarMap[str, str]
    version: int
    health: str
    def __init__(self, name: _Optional[str] = ..., service: _Optional[str] = ..., slot: _Optional[int] = ..., host: _Optional[str] = ..., state: _Optional[str] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., restarts: _Optional[int] = ..., started_at: _Optional[float] = ..., addresses: _Optional[_Mapping[str, str]] = ..., version: _Optional[int] = ..., health: _Optional[str] = ...) -> None: ...

class ServiceDetail(_message.Message):
    __slots__ = ("spec", "tasks", "desired_tasks")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_TASKS_FIELD_NUMBER: _ClassVar[int]
    spec: ServiceSpec
    tasks: _containers.RepeatedCompositeFieldContainer[ServiceTask]
    desired_tasks: int
    def __init__(self, spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[ServiceTask, _Mapping]]] = ..., desired_tasks: _Optional[int] = ...) -> None: ...

class ServiceList(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[ServiceDetail]
    def __init__(self, services: _Optional[_Iterable[_Union[ServiceDetail, _Mapping]]] = ...) -> None: ...

class ScaleRequest(_message.Message):
    __slots__ = ("name", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    replicas: int
    def __init__(self, name: _Optional[str] = ..., replicas: _Optional[int] = ...) -> None: ...

class ArchiveChunk(_message.Message):
    __slots__ = ("data", "name")
    DATA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    name: str
    def __init__(self, data: _Optional[bytes] = ..., name: _Optional[str] = ...) -> None: ...

class ImageRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class RemoveImageRequest(_message.Message):
    __slots__ = ("references",)
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    references: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, references: _Optional[_Iterable[str]] = ...) -> None: ...

class ImageLines(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lines: _Optional[_Iterable[str]] = ...) -> None: ...

class ImageConfig(_message.Message):
    __slots__ = ("entrypoint", "cmd", "env", "working_dir", "user", "exposed_ports", "labels", "stop_signal", "healthcheck_test", "healthcheck_interval", "healthcheck_timeout", "healthcheck_start_period", "healthcheck_retries")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    CMD_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_PORTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STOP_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_TEST_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_RETRIES_FIELD_NUMBER: _ClassVar[int]
    entrypoint: _containers.RepeatedScalarFieldContainer[str]
    cmd: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.RepeatedScalarFieldContainer[str]
    working_dir: str
    user: str
    exposed_ports: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    stop_signal: str
    healthcheck_test: _containers.RepeatedScalarFieldContainer[str]
    healthcheck_interval: int
    healthcheck_timeout: int
    healthcheck_start_period: int
    healthcheck_retries: int
    def __init__(self, entrypoint: _Optional[_Iterable[str]] = ..., cmd: _Optional[_Iterable[str]] = ..., env: _Optional[_Iterable[str]] = ..., working_dir: _Optional[str] = ..., user: _Optional[str] = ..., exposed_ports: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., stop_signal: _Optional[str] = ..., healthcheck_test: _Optional[_Iterable[str]] = ..., healthcheck_interval: _Optional[int] = ..., healthcheck_timeout: _Optional[int] = ..., healthcheck_start_period: _Optional[int] = ..., healthcheck_retries: _Optional[int] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("reference", "id", "digest", "created", "size", "architecture", "os", "config")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    reference: str
    id: str
    digest: str
    created: str
    size: int
    architecture: str
    os: str
    config: ImageConfig
    def __init__(self, reference: _Optional[str] = ..., id: _Optional[str] = ..., digest: _Optional[str] = ..., created: _Optional[str] = ..., size: _Optional[int] = ..., architecture: _Optional[str] = ..., os: _Optional[str] = ..., config: _Optional[_Union[ImageConfig, _Mapping]] = ...) -> None: ...

class ImageList(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...
