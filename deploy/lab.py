"""A multi-host vxmesh lab on one machine, each "host" a network namespace.

    P-fabric   bridge `fabric`, the underlay switch (no address)
    P-ctl      10.231.0.2    controller (+ its private etcd, without etcd members)
    P-ctlK     10.231.0.(200+K)  controller K >= 2, with `controllers=N` (needs etcd members)
    P-eN       10.231.0.(2+N) etcd member eN, with `etcd_members=N` (0 by default)
    P-hN       10.231.0.1N   agent N
    P-reg      10.231.0.10   the cluster's image registry (deploy/lab_registry.py)
    P-ext      10.231.0.100  `deploy/ext_server.py`, an outside TCP server

The daemons run as on a deployed host: each from a config file written by
deploy/config_files.py into the lab's state directory, with the ExecStart=
command line of its systemd unit in deploy/systemd/ (see deploy/units.py),
and with mutual TLS on every TCP port: `up()` makes the CAs (the cluster's,
and etcd's, which only etcd members and controllers hold certificates of)
and the daemons' and an admin's certificates in <state>/tls first
(deploy/lab_tls.py).

The namespaces, the fabric and the cables are a deploy/topology.py
Topology tagged with the prefix. The root namespace gets no address, route
or link. Everything the lab owns is named from its prefix, so `down()` can
find it again from a fresh process, even when the state file is gone.

    python -m deploy.lab up|down|status [--prefix P] [--hosts N] [--etcd-members N] [--controllers N]
                                        [--agent-option KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.oci.cgroups import HostCgroups
from deploy import lab_registry, units
from deploy.images import busybox_archive
from deploy.config_files import EtcdConfig, EtcdMember, EtcdTls, render_agent, render_controller, render_etcd
from deploy.lab_errors import LabCommandError, LabError, LabExists
from deploy.lab_processes import REPO_ROOT, ProcessRecord, Supervisor, is_alive
from deploy.lab_tls import etcd_client_paths, make_certs, tls_paths
from deploy.registry_config import REGISTRY_PORT
from proto.config_file import ConfigError
from deploy.topology import Node, Switch, Topology, is_tag, list_netns

DEFAULT_PREFIX = "vxlab"
CONTROLLER_IP = "10.231.0.2"
EXT_IP = "10.231.0.100"
CONTROLLER_PORT = 7946
AGENT_PORT = 7947
EXT_PORT = 8080
MAX_HOSTS = 80            # host N is 10.231.0.(10+N): stays clear of ext's .100
MAX_ETCD_MEMBERS = 7      # member N is 10.231.0.(2+N): stays clear of the hosts' .11
MAX_CONTROLLERS = 9       # controller K >= 2 is 10.231.0.(200+K): clear of ext's .100
ETCD_CLIENT_PORT = 2379
FABRIC_BRIDGE = "fabric"
HOST_UPLINK = "eth0"      # every node's cable to the fabric
UNDERLAY_PREFIXLEN = 24
AGENT_STATE_ROOT = Path("/run/vxmesh")
UNIX_PATH_MAX = 107       # sun_path is 108 bytes including the NUL
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,11}$")
# A prefix like "h1" would name its agents "h1-h1", whose netns
# "vxm-h1-h1-..." the default lab's `down()` would take for its own host h1.
RESERVED_PREFIX_RE = re.compile(r"^h[0-9]+$")
# `make lab` names its hosts h1..hN, so its agents' namespaces carry no prefix.
DEFAULT_LAB_AGENT_NETNS_RE = re.compile(r"^vxm-h[0-9]+-")


@dataclass
class LabHost:
    name: str          # the agent's host name
    netns: str
    underlay_ip: str
    api: str


@dataclass
class LabEtcdMember:
    name: str          # the member's name in the etcd cluster
    netns: str
    address: str

    @property
    def client_url(self) -> str:
        return f"https://{self.address}:{ETCD_CLIENT_PORT}"

    @property
    def role(self) -> str:
        return f"etcd-{self.name}"


class Lab:
    ext_ip = EXT_IP

    def __init__(self, prefix: str = DEFAULT_PREFIX, hosts: int = 3, underlay_mtu: int = 1500,
                 state_root: Path = Path("/run/vxmesh-lab"), etcd_members: int = 0,
                 controllers: int = 1, agent_options: dict[str, str] | None = None,
                 controller_options: dict[str, object] | None = None) -> None:
        if not PREFIX_RE.match(prefix) or RESERVED_PREFIX_RE.match(prefix) or not is_tag(prefix):
            raise ValueError(f"lab prefix {prefix!r} must be 2-12 lowercase letters/digits starting "
                             "with a letter, and neither of the form h<digits> nor vxm")
        if not 1 <= hosts <= MAX_HOSTS:
            raise ValueError(f"a lab has 1..{MAX_HOSTS} hosts, not {hosts}")
        if not 0 <= etcd_members <= MAX_ETCD_MEMBERS:
            raise ValueError(f"a lab has 0..{MAX_ETCD_MEMBERS} etcd members, not {etcd_members}")
        if not 576 <= underlay_mtu <= 65535:
            raise ValueError(f"underlay MTU {underlay_mtu} is outside 576..65535")
        if not 1 <= controllers <= MAX_CONTROLLERS:
            raise ValueError(f"a lab has 1..{MAX_CONTROLLERS} controllers, not {controllers}")
        if controllers > 1 and etcd_members == 0:
            # The private etcd of a controller listens on its loopback only.
            raise ValueError(f"{controllers} controllers must share an etcd cluster: give etcd_members >= 1")
        self.controllers = controllers
        # Options every agent's config gets on top of the lab's own, e.g. {"port-security": "off"}.
        self.agent_options = dict(agent_options or {})
        try:  # refused now, naming the key, rather than half-way through up()
            render_agent({"name": "h1", "controller": [f"{CONTROLLER_IP}:{CONTROLLER_PORT}"],
                          "vtep-ip": CONTROLLER_IP, **self.agent_options}, "")
        except ConfigError as err:
            raise ValueError(f"agent options: {err}") from None
        # Options every controller's config gets on top of the lab's own, e.g. {"agent-grace": 0}.
        self.controller_options = dict(controller_options or {})
        try:
            render_controller(self.controller_options, "")
        except ConfigError as err:
            raise ValueError(f"controller options: {err}") from None
        self.prefix = prefix
        self.underlay_mtu = underlay_mtu
        self.state_dir = Path(state_root) / prefix
        self.controller_socket = str(self.state_dir / "controller.sock")
        self.tls_dir = self.state_dir / "tls"   # the lab's CAs and certificates (deploy/lab_tls.py)
        if len(self.controller_socket) > UNIX_PATH_MAX:
            raise ValueError(f"controller socket path {self.controller_socket} is longer than "
                             f"{UNIX_PATH_MAX} bytes; use a shorter state_root")
        self.topology = Topology(prefix, adopt=DEFAULT_LAB_AGENT_NETNS_RE.match if prefix == DEFAULT_PREFIX else None)
        self.fabric_ns = self.topology.name("fabric")
        self.ctl_ns = self.topology.name("ctl")
        self.ext_ns = self.topology.name("ext")
        self.registry_ns = self.topology.name(lab_registry.NODE)
        self.registry = lab_registry.ADDRESS   # what configs and image references name
        self.hosts = [self._make_host(i) for i in range(1, hosts + 1)]
        self.etcd_members = [self._make_etcd_member(i) for i in range(1, etcd_members + 1)]
        records = self._read_state_file()  # may replace hosts, members and MTU with the running lab's
        self._procs = Supervisor(self.state_dir / "logs", records, self._save_state)

    # ---- naming ----------------------------------------------------------

    def _make_host(self, index: int) -> LabHost:
        ip = f"10.231.0.{10 + index}"
        netns = self.topology.name(f"h{index}")
        # Agents name global objects after their host; only `make lab` owns h1..hN.
        name = f"h{index}" if self.prefix == DEFAULT_PREFIX else netns
        return LabHost(name=name, netns=netns, underlay_ip=ip, api=f"{ip}:{AGENT_PORT}")

    def _make_etcd_member(self, index: int) -> LabEtcdMember:
        return LabEtcdMember(name=f"e{index}", netns=self.topology.name(f"e{index}"),
                             address=f"10.231.0.{2 + index}")

    # Controller 1 keeps the names a one-controller lab always had (ctl,
    # controller.sock, controller.toml, role "controller"); K >= 2 adds K.

    def controller_ns(self, index: int = 1) -> str:
        return self.ctl_ns if index == 1 else f"{self.ctl_ns}{index}"

    @staticmethod
    def controller_ip(index: int = 1) -> str:
        return CONTROLLER_IP if index == 1 else f"10.231.0.{200 + index}"

    def controller_socket_of(self, index: int = 1) -> str:
        return self.controller_socket if index == 1 else str(self.state_dir / f"controller{index}.sock")

    @staticmethod
    def controller_role(index: int = 1) -> str:
        return "controller" if index == 1 else f"controller{index}"

    def controller_config_of(self, index: int = 1) -> Path:
        return self.controller_config if index == 1 else self.state_dir / f"controller{index}.toml"

    @property
    def controller_indexes(self) -> range:
        return range(1, self.controllers + 1)

    @staticmethod
    def controller_cert_name(index: int = 1) -> str:
        return "ctl" if index == 1 else f"ctl{index}"

    def make_certs(self) -> None:
        """The lab's CA and the certificates of its daemons and its admin."""
        make_certs(self.tls_dir,
                   controllers=[(self.controller_cert_name(k), self.controller_ip(k)) for k in self.controller_indexes],
                   agents=[(h.name, h.underlay_ip) for h in self.hosts],
                   etcd_members=[(m.name, m.address) for m in self.etcd_members])
        lab_registry.make_cert(self.tls_dir)

    # ---- config files, as deploy/provision.sh writes them to /etc/vxmesh ----

    @property
    def controller_config(self) -> Path:
        return self.state_dir / "controller.toml"

    @property
    def registry_config(self) -> Path:
        return self.state_dir / "registry.yml"

    def agent_config(self, host: LabHost) -> Path:
        return self.state_dir / f"agent-{host.name}.toml"

    def etcd_config(self, member: LabEtcdMember) -> Path:
        return self.state_dir / f"etcd-{member.name}.yaml"

    @property
    def _config_header(self) -> str:
        return f"Written by deploy/lab.py for the namespace lab {self.prefix!r}."

    def write_configs(self) -> None:
        header = self._config_header
        for k in self.controller_indexes:
            self.write_controller_config(k, self.controller_options)
        for host in self.hosts:
            self.write_agent_config(host, self.agent_options)
        lab_registry.write_config(self.registry_config, self.tls_dir, self.state_dir / "registry", header)
        cluster = tuple(EtcdMember(m.name, m.address, "https") for m in self.etcd_members)
        for member in self.etcd_members:
            config = EtcdConfig(member.name, cluster, data_dir=str(self.state_dir / f"etcd-{member.name}"),
                                token=f"vxmesh-lab-{self.prefix}",
                                tls=EtcdTls(**tls_paths(self.tls_dir, "etcd", member.name)))
            self.etcd_config(member).write_text(render_etcd(config, header))

    def write_controller_config(self, index: int, options: dict[str, object]) -> None:
        """Controller `index`'s config: the lab's settings with `options` on top."""
        self.controller_config_of(index).write_text(render_controller({
            "listen": [f"{self.controller_ip(index)}:{CONTROLLER_PORT}", f"unix://{self.controller_socket_of(index)}"],
            "etcd": [m.client_url for m in self.etcd_members],
            "data-dir": str(self.state_dir / "etcd"), "registry": self.registry,
            **tls_paths(self.tls_dir, "controller", self.controller_cert_name(index)),
            **etcd_client_paths(self.tls_dir, self.controller_cert_name(index)),
            **options,
        }, self._config_header))

    def write_agent_config(self, host: LabHost, options: dict[str, str]) -> None:
        """The host's agent config: the lab's settings with `options` on top."""
        # Every agent gets every controller, as the systemd config would.
        controllers = [f"{self.controller_ip(k)}:{CONTROLLER_PORT}" for k in self.controller_indexes]
        self.agent_config(host).write_text(render_agent({
            "name": host.name, "controller": controllers,
            "vtep-ip": host.underlay_ip, "api": host.api, "registry": self.registry,
            "plugin-socket": str(self.plugin_socket(host)),
            "docker-api": str(self.docker_api_socket(host)),
            **tls_paths(self.tls_dir, "agent", host.name), **options,
        }, self._config_header))

    def docker_api_socket(self, host: LabHost) -> Path:
        """Where a test's dockerd on the host serves its API (its -H), for the agent
        to read its containers' names: absent unless a test runs one."""
        return self.state_dir / "engines" / f"docker-{host.name}" / "run" / "docker.sock"

    def plugin_socket(self, host: LabHost) -> Path:
        """The host's engine plug-in socket: one per host, as each host's Docker
        would find it in its own /run/docker/plugins."""
        return self.state_dir / "plugins" / host.name / "vxmesh.sock"

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "pids.json"

    @property
    def _host_name_re(self) -> str:
        return r"h[0-9]+" if self.prefix == DEFAULT_PREFIX else rf"{self.prefix}-h[0-9]+"

    def _agent_state_dirs(self) -> list[Path]:
        theirs = re.compile(rf"^{self._host_name_re}$")
        if not AGENT_STATE_ROOT.is_dir():
            return []
        return [d for d in AGENT_STATE_ROOT.iterdir() if theirs.match(d.name)]

    # ---- state file --------------------------------------------------------

    def _read_state_file(self) -> dict[str, ProcessRecord]:
        # A lab already running under this prefix is the truth: a fresh
        # process (`lab down`, `lab status`) must see its hosts and pids.
        try:
            state = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise LabError(f"lab state file {self._state_file} is corrupt: {exc}") from exc
        self.underlay_mtu = state["underlay_mtu"]
        self.controllers = state.get("controllers", 1)
        self.hosts = [LabHost(**h) for h in state["hosts"]]
        self.etcd_members = [LabEtcdMember(**m) for m in state.get("etcd_members", [])]
        return {role: ProcessRecord(**r) for role, r in state["processes"].items()}

    def _save_state(self) -> None:
        state = {"prefix": self.prefix, "underlay_mtu": self.underlay_mtu, "controllers": self.controllers,
                 "hosts": [asdict(h) for h in self.hosts],
                 "etcd_members": [asdict(m) for m in self.etcd_members],
                 "processes": {role: asdict(r) for role, r in self._procs.records.items()}}
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self._state_file)

    # ---- lifecycle -------------------------------------------------------

    def _leftovers(self) -> list[str]:
        found = self.topology.owned()
        found += [str(d) for d in self._agent_state_dirs()]
        return found + ([str(self.state_dir)] if self.state_dir.exists() else [])

    def exists(self) -> bool:
        """True if anything this lab would own is present, even a leftover."""
        return bool(self._leftovers())

    def __enter__(self) -> Lab:
        """`with Lab(...) as lab:` brings the lab up, and takes it down on every way out."""
        self.up()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    def up(self, start_vxmesh: bool = True) -> None:
        if self.exists():
            raise LabExists(f"lab {self.prefix!r} already exists ({', '.join(self._leftovers())}); "
                            f"run `python -m deploy.lab down --prefix {self.prefix}` first")
        try:
            self.state_dir.mkdir(parents=True)
            self._build_topology()
            self._save_state()
            self.make_certs()
            self.write_configs()
            self._start_ext()
            if start_vxmesh:
                self._start_registry()
                self._start_etcd_cluster()
                for k in self.controller_indexes:
                    self.start_controller(k)
                for host in self.hosts:
                    self._spawn(f"agent-{host.name}", host.netns, self.agent_argv(host))
                self.wait_hosts_up()
        except BaseException as exc:
            try:
                self.down()
            except Exception as cleanup_exc:
                exc.add_note(f"and tearing the half-built lab down failed too: {cleanup_exc}")
            raise

    def down(self) -> None:
        # The recorded processes (agents among them) first, so none is left
        # to make a namespace while the topology sweeps its own.
        self._procs.kill_all()
        self.topology.remove()
        for state_dir in self._agent_state_dirs():
            shutil.rmtree(state_dir)
        # The agents named their containers' cgroups after their hosts
        # (crun's parent); whatever is left in them dies with them.
        cgroups = HostCgroups.detect()
        for host in self.hosts:
            parent = f"vxmesh-{host.name}"
            for container_id in cgroups.container_ids(parent):
                cgroups.remove(parent, container_id)
            cgroups.remove_parent_if_empty(parent)
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        # The shared parents go with the last lab that used them; another
        # lab's directories keep them (rmdir refuses a non-empty one).
        for parent in (self.state_dir.parent, AGENT_STATE_ROOT):
            with contextlib.suppress(OSError):
                parent.rmdir()

    def _build_topology(self) -> None:
        self.topology.switch("fabric", FABRIC_BRIDGE)
        # Every other node (ctl, ext, ctl2.., e1.., h1..) and its address on the fabric.
        nodes = [(self.ctl_ns, CONTROLLER_IP), (self.ext_ns, EXT_IP),
                 (self.registry_ns, lab_registry.REGISTRY_IP)]
        nodes += [(self.controller_ns(k), self.controller_ip(k)) for k in self.controller_indexes[1:]]
        nodes += [(m.netns, m.address) for m in self.etcd_members]
        nodes += [(h.netns, h.underlay_ip) for h in self.hosts]
        for netns, address in nodes:
            self.plug(netns.removeprefix(f"{self.prefix}-"), address)

    @property
    def fabric(self) -> Switch:
        """The underlay switch every node is cabled to."""
        return Switch(Node(self.fabric_ns), FABRIC_BRIDGE)

    def plug(self, suffix: str, address: str) -> Node:
        """A new node `<prefix>-<suffix>` whose eth0 has `address` on the fabric
        (switch port `p-<suffix>`); `down()` removes it with the rest."""
        node = self.topology.node(suffix)
        self.fabric.plug(node, f"p-{suffix}", HOST_UPLINK, f"{address}/{UNDERLAY_PREFIXLEN}", self.underlay_mtu)
        return node

    # ---- processes -------------------------------------------------------

    @staticmethod
    def vxmesh_program() -> Path:
        """This checkout's `vxmesh` entry point, in the venv running the lab:
        what /opt/vxmesh/venv/bin/vxmesh is on a deployed host."""
        return Path(sys.executable).parent / "vxmesh"

    def controller_argv(self, index: int = 1) -> list[str]:
        return units.exec_start(units.CONTROLLER_UNIT).with_paths(self.controller_config_of(index),
                                                                  self.vxmesh_program())

    def agent_argv(self, host: LabHost) -> list[str]:
        return units.exec_start(units.AGENT_UNIT).with_paths(self.agent_config(host), self.vxmesh_program())

    def etcd_argv(self, member: LabEtcdMember) -> list[str]:
        # The unit's own program: Debian's /usr/bin/etcd, as on a deployed host.
        return units.exec_start(units.ETCD_UNIT).with_paths(self.etcd_config(member))

    def ext_argv(self) -> list[str]:
        return [sys.executable, "-m", "deploy.ext_server", "--listen", EXT_IP, "--port", str(EXT_PORT)]

    def _start_ext(self) -> None:
        self._procs.spawn("ext", self.ext_ns, self.ext_argv())
        self._procs.wait_until(
            f"ext server on {EXT_IP}:{EXT_PORT}",
            lambda: _unless(Node(self.ext_ns).listening_on(EXT_PORT), "not listening yet"),
            ["ext"], timeout=15)

    def _start_registry(self) -> None:
        self._spawn(lab_registry.ROLE, self.registry_ns, lab_registry.argv(self.registry_config))
        self._procs.wait_until(
            f"image registry on {self.registry}",
            lambda: _unless(Node(self.registry_ns).listening_on(REGISTRY_PORT), "not listening yet"),
            [lab_registry.ROLE], timeout=15)

    def load_image(self, archive: Path) -> str:
        """`vxmesh image load -i ARCHIVE`: the archive's images into the lab's registry."""
        return self.cli("image", "load", "-i", str(archive), timeout=120).stdout

    def load_busybox(self) -> str:
        """busybox:latest, built here (deploy/images.py), loaded as a user loads a `docker save` tarball."""
        with tempfile.TemporaryDirectory(prefix="vxmesh-busybox-") as tmp:
            return self.load_image(busybox_archive(Path(tmp) / "busybox.tar"))

    def log_path(self, role: str) -> Path:
        """The log of the lab process `role` ("controller", "agent-<host name>", "ext", ...)."""
        return self._procs.log_path(role)

    def pid(self, role: str) -> int:
        """The pid of the lab process `role` (named as for log_path), to read its /proc."""
        record = self._procs.records.get(role)
        if record is None or not is_alive(record):
            raise LabError(f"lab process {role} is not running")
        return record.pid

    def _spawn(self, role: str, netns: str, argv: list[str]) -> None:
        program = Path(argv[0])
        if not (program.is_file() and os.access(program, os.X_OK)):
            raise LabError(f"cannot start {role}: {program} is not installed (run `make setup`)")
        self._procs.spawn(role, netns, argv)

    def _start_etcd_cluster(self, timeout: float = 30) -> None:
        # All members before any wait: a new cluster answers only with a quorum.
        for member in self.etcd_members:
            self._spawn(member.role, member.netns, self.etcd_argv(member))
        if self.etcd_members:
            self._procs.wait_until("etcd cluster healthy", lambda: self._etcd_unhealthy(self.etcd_members),
                                   [m.role for m in self.etcd_members], timeout)

    def _etcd_member(self, member: LabEtcdMember | str) -> LabEtcdMember:
        name = member.name if isinstance(member, LabEtcdMember) else member
        for candidate in self.etcd_members:
            if candidate.name == name:
                return candidate
        raise LabError(f"lab {self.prefix!r} has no etcd member {name!r}; "
                       f"members: {[m.name for m in self.etcd_members]}")

    def stop_etcd_member(self, member: LabEtcdMember | str) -> None:
        """kill -9 the member, as a crashed host; its data directory stays."""
        member = self._etcd_member(member)
        self._procs.stop(member.role, member.netns)

    def start_etcd_member(self, member: LabEtcdMember | str, timeout: float = 30) -> None:
        """Start a member again from its data directory: it rejoins the cluster."""
        member = self._etcd_member(member)
        self._spawn(member.role, member.netns, self.etcd_argv(member))
        self._procs.wait_until(f"etcd member {member.name} healthy", lambda: self._etcd_unhealthy([member]),
                               [member.role], timeout)

    def start_etcd_members(self, members: list[LabEtcdMember], timeout: float = 30) -> None:
        """Start several members at once, then wait for them: members that lost
        the quorum together answer only once enough of them are back."""
        for member in members:
            self._spawn(member.role, member.netns, self.etcd_argv(member))
        self._procs.wait_until(f"etcd members {[m.name for m in members]} healthy",
                               lambda: self._etcd_unhealthy(members), [m.role for m in members], timeout)

    def pause_etcd_member(self, member: LabEtcdMember | str) -> None:
        """SIGSTOP the member: its connections stay open and nothing answers,
        as from a hung process or a paused VM."""
        self._signal_etcd_member(member, signal.SIGSTOP)

    def resume_etcd_member(self, member: LabEtcdMember | str, timeout: float = 30) -> None:
        member = self._etcd_member(member)
        self._signal_etcd_member(member, signal.SIGCONT)
        self._procs.wait_until(f"etcd member {member.name} healthy", lambda: self._etcd_unhealthy([member]),
                               [member.role], timeout)

    def _signal_etcd_member(self, member: LabEtcdMember | str, signum: int) -> None:
        member = self._etcd_member(member)
        record = self._procs.records.get(member.role)
        if record is None or not is_alive(record):
            raise LabError(f"etcd member {member.name} is not running")
        os.kill(record.pid, signum)

    def etcdctl(self, *args: str, endpoints: list[LabEtcdMember] | None = None, check: bool = True,
                timeout: float = 15) -> subprocess.CompletedProcess:
        """etcdctl from the controller's namespace, against `endpoints` (default: every member)."""
        urls = ",".join(m.client_url for m in (endpoints if endpoints is not None else self.etcd_members))
        # etcd wants a client certificate from its own CA: the controller's, as the controller connects.
        tls = tls_paths(self.tls_dir, "etcd-client", self.controller_cert_name(1))
        return self.netns_exec(self.ctl_ns, "etcdctl", "--endpoints", urls, "--dial-timeout", "2s",
                               "--command-timeout", "3s", "--cacert", tls["ca"], "--cert", tls["cert"],
                               "--key", tls["key"], *args, check=check, timeout=timeout)

    def _etcd_unhealthy(self, members: list[LabEtcdMember]) -> str | None:
        proc = self.etcdctl("endpoint", "health", endpoints=members, check=False)
        return _unless(proc.returncode == 0, (proc.stdout + proc.stderr).strip()[-300:] or "no answer")

    def start_controller(self, index: int = 1, timeout: float = 30) -> None:
        role = self.controller_role(index)
        self._spawn(role, self.controller_ns(index), self.controller_argv(index))
        self._procs.wait_until(f"{role} on {self.controller_socket_of(index)}",
                               lambda: self._controller_silent(index), [role], timeout)

    def stop_controller(self, index: int = 1) -> None:
        # The whole namespace, not just the pid: the controller's private
        # etcd must die with it, as on a real crashed host, or the restart
        # would find its port and data dir taken.
        self._procs.stop(self.controller_role(index), self.controller_ns(index))

    def start_agent(self, host: LabHost | str, timeout: float = 30) -> None:
        host = self._host(host)
        role = f"agent-{host.name}"
        self._spawn(role, host.netns, self.agent_argv(host))
        self._procs.wait_until(
            f"agent {host.name} API on {host.api}",
            lambda: _unless(Node(host.netns).listening_on(AGENT_PORT), "not listening yet"),
            [role], timeout)
        self.wait_hosts_up([host.name], timeout)

    def restart_agent_with(self, host: LabHost | str, options: dict[str, str]) -> None:
        """Restart the host's agent with `options` in its config file (the lab's own
        agent options replaced), as an operator would: e.g. {"port-security": "off"}."""
        host = self._host(host)
        self.write_agent_config(host, options)
        self.stop_agent(host)
        self.start_agent(host)

    def pause_agent(self, host: LabHost | str) -> None:
        """SIGSTOP the agent: its stream stays open but nothing it should do gets done."""
        self._signal_agent(host, signal.SIGSTOP)

    def resume_agent(self, host: LabHost | str) -> None:
        self._signal_agent(host, signal.SIGCONT)

    def _signal_agent(self, host: LabHost | str, signum: int) -> None:
        host = self._host(host)
        record = self._procs.records.get(f"agent-{host.name}")
        if record is None or not is_alive(record):
            raise LabError(f"the agent of {host.name} is not running")
        os.kill(record.pid, signum)

    def cut_underlay(self, host: LabHost | str) -> None:
        """Unplug the host from the fabric (its switch port down): its VTEP, its
        agent's stream and its API all go, while every process on it runs on."""
        self._fabric_port(host, "down")

    def restore_underlay(self, host: LabHost | str) -> None:
        self._fabric_port(host, "up")

    def _fabric_port(self, host: LabHost | str, state: str) -> None:
        host = self._host(host)
        port = f"p-{host.netns.removeprefix(f'{self.prefix}-')}"
        Node(self.fabric_ns).ip("link", "set", port, state)

    def stop_agent(self, host: LabHost | str) -> None:
        """kill -9 the agent, as a crash (or systemd stopping its unit, KillMode=process):
        its containers and their monitors (conmon, in the host's namespace) survive."""
        host = self._host(host)
        self._procs.stop(f"agent-{host.name}", host.netns, whole_namespace=False)

    def _host(self, host: LabHost | str) -> LabHost:
        name = host.name if isinstance(host, LabHost) else host
        for candidate in self.hosts:
            if candidate.name == name:
                return candidate
        raise LabError(f"lab {self.prefix!r} has no host {name!r}; hosts: {[h.name for h in self.hosts]}")

    def _controller_silent(self, index: int = 1) -> str | None:
        if not Path(self.controller_socket_of(index)).exists():
            return "socket not created yet"
        try:
            proc = self.cli("host", "ls", "--format", "json", check=False, timeout=10, controller=index)
        except subprocess.TimeoutExpired:
            # A loaded machine (the soak's restarts, other labs) can stretch one
            # call past 10 s: not yet an answer, asked again until the wait's end.
            return "`host ls` did not answer within 10s"
        return _unless(proc.returncode == 0, f"`host ls` failed: {proc.stderr.strip()[-500:]}")

    def host_states(self) -> dict[str, str]:
        """{host name: state} as the controller reports it."""
        listing = json.loads(self.cli("host", "ls", "--format", "json").stdout)
        rows = listing["hosts"] if isinstance(listing, dict) else listing
        return {row["name"]: row["state"] for row in rows}

    def wait_hosts_up(self, names: list[str] | None = None, timeout: float = 60) -> None:
        names = names if names is not None else [h.name for h in self.hosts]
        roles = ["controller", *(f"agent-{n}" for n in names)]
        self._procs.wait_until(f"hosts {names} up in `host ls`", lambda: self._hosts_not_up(names),
                               roles, timeout)

    def _hosts_not_up(self, names: list[str]) -> str | None:
        try:
            states = self.host_states()
        except (LabCommandError, subprocess.TimeoutExpired) as exc:
            return str(exc)  # e.g. the controller is still restarting
        waiting = {n: states.get(n, "unregistered") for n in names if states.get(n) != "up"}
        return _unless(not waiting, f"not up: {waiting}")

    # ---- running commands ------------------------------------------------

    def cli_argv(self, *args: str, controller: int | list[int] = 1) -> list[str]:
        """`vxmesh ARGS` against this lab's controller, or several in that order:
        a call that breaks moves on to the next (run it with cwd=REPO_ROOT)."""
        indexes = controller if isinstance(controller, list) else [controller]
        return [sys.executable, "-m", "cli.main", "--controller",
                ",".join(f"unix://{self.controller_socket_of(k)}" for k in indexes), *args]

    def tls_cli_argv(self, *args: str, role: str = "admin", name: str = "admin") -> list[str]:
        """`vxmesh ARGS` over TCP and mutual TLS, holding `role` `name`'s certificate,
        as from another host: run it in a lab namespace (netns_exec)."""
        tls = tls_paths(self.tls_dir, role, name)
        return [sys.executable, "-m", "cli.main", "--controller", f"{CONTROLLER_IP}:{CONTROLLER_PORT}",
                "--ca", tls["ca"], "--cert", tls["cert"], "--key", tls["key"], *args]

    def cli(self, *args: str, check: bool = True, timeout: float = 30,
            controller: int | list[int] = 1) -> subprocess.CompletedProcess:
        return _run(self.cli_argv(*args, controller=controller), check, timeout)

    def netns_exec(self, netns: str, *argv: str, check: bool = True,
                   timeout: float = 30) -> subprocess.CompletedProcess:
        return _run(["ip", "netns", "exec", netns, *map(str, argv)], check, timeout)

    def status(self) -> str:
        lines = [f"lab {self.prefix}: {'present' if self.exists() else 'absent'}, state {self.state_dir}"]
        present = set(list_netns())
        rows = [(self.controller_role(k), self.controller_ns(k), self.controller_ip(k), self.controller_role(k))
                for k in self.controller_indexes]
        rows += [("ext", self.ext_ns, EXT_IP, "ext"),
                 ("registry", self.registry_ns, lab_registry.REGISTRY_IP, lab_registry.ROLE)]
        rows += [(m.role, m.netns, m.address, m.role) for m in self.etcd_members]
        rows += [(h.name, h.netns, h.underlay_ip, f"agent-{h.name}") for h in self.hosts]
        for name, netns, address, role in rows:
            record = self._procs.records.get(role)
            process = "not started" if record is None else (
                f"pid {record.pid} {'alive' if is_alive(record) else 'dead'}")
            netns_state = netns if netns in present else f"{netns} (missing)"
            lines.append(f"  {name:<14} {netns_state:<22} {address:<14} {process}")
        return "\n".join(lines)


def unused_prefix(stem: str) -> str:
    """`<stem><4 hex>`: a random prefix no lab, nor anything left of one, uses now."""
    for _ in range(20):
        prefix = f"{stem}{secrets.token_hex(2)}"
        if not Lab(prefix).exists():
            return prefix
    raise LabError(f"20 random lab prefixes {stem}<4 hex> were all taken: "
                   f"clean up with `python -m deploy.lab down --prefix {stem}....`")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--agent-option {text!r}: expected KEY=VALUE")
    return key, value


def _unless(ready: bool, reason: str) -> str | None:
    return None if ready else reason


def _run(argv: list[str], check: bool, timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
    if check and proc.returncode != 0:
        raise LabCommandError(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--mtu", type=int, default=1500, help="underlay MTU")
    parser.add_argument("--etcd-members", type=int, default=0,
                        help="run an etcd cluster of this many members for the controller "
                             "(default 0: the controller's private etcd)")
    parser.add_argument("--controllers", type=int, default=1,
                        help="run this many controllers on the etcd cluster (needs --etcd-members)")
    parser.add_argument("--agent-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option for every agent's config file, e.g. port-security=off (repeatable)")
    parser.add_argument("--no-vxmesh", action="store_true", help="only the plumbing and ext server")
    args = parser.parse_args(argv)
    try:
        options = dict(_key_value(o) for o in args.agent_option)
        lab = Lab(args.prefix, hosts=args.hosts, underlay_mtu=args.mtu, etcd_members=args.etcd_members,
                  controllers=args.controllers, agent_options=options)
    except ValueError as exc:  # a bad option
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "up":
            lab.up(start_vxmesh=not args.no_vxmesh)
            print(lab.status())
        elif args.action == "down":
            lab.down()
        else:
            print(lab.status())
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
