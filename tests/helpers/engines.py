"""Docker and podman on a lab host, each confined to what the test gave it.

`DockerDaemon`: one dockerd in a lab host's network namespace and a private
mount namespace whose /run is the engine's own directory under the lab's
state (so its sockets, sandboxes, containerd and data never meet another
dockerd), with the host agent's plug-in directory bound where Docker looks
for plug-ins (/run/docker/plugins). Started with everything that would touch
the host's namespace off: no docker0, no iptables, no IP forwarding.

`Podman`: podman run in the host's network namespace with its own
containers.conf and storage.conf (CNI backend, cgroupfs, limits this
sandbox allows), its CNI config directory holding the conflist
`vxmesh cni install` writes, and vxmesh-cni as its only plug-in besides
loopback.

Both are removed on the way out, with every process left in their mount
namespace (containerd, shims, conmon), and `stray_processes` tells a test
whether anything survived.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.oci.cgroups import HostCgroups
from deploy.lab import Lab, LabHost

DOCKER = "/usr/bin/docker"      # Debian's client, the daemon's version (not any other on PATH)
DOCKERD = "/usr/sbin/dockerd"
PODMAN = "/usr/bin/podman"
CNI_PLUGINS = Path("/usr/lib/cni")
REPO_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0


# podman's parent with cgroupfs: its containers' cgroups are libpod-<id> under it.
PODMAN_CGROUP_PARENT = "libpod_parent"


def remove_cgroups(parent: str) -> None:
    """The engine's containers' cgroups under `parent`, and `parent` itself once empty."""
    cgroups = HostCgroups.detect()
    for hierarchy in cgroups.hierarchies:
        directory = hierarchy / parent
        if not directory.is_dir():
            continue
        for child in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir():
                try:
                    child.rmdir()
                except OSError:
                    pass   # still in use: left for its owner
    cgroups.remove_parent_if_empty(parent)


def _mnt_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def processes_in_mount_ns(ns: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _mnt_ns(int(entry)) == ns:
            found.append(int(entry))
    return found


class DockerDaemon:
    def __init__(self, lab: Lab, host: LabHost):
        self.lab = lab
        self.host = host
        self.socket = lab.docker_api_socket(host)   # where the host's agent asks for names
        self.run_dir = self.socket.parent
        self.root = self.run_dir.parent
        self.log = self.root / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self.mount_ns: str | None = None
        self.cgroup_parent = f"vxmesh-docker-{host.name}"

    def start(self) -> DockerDaemon:
        (self.run_dir / "docker" / "plugins").mkdir(parents=True, exist_ok=True)
        plugins = self.lab.plugin_socket(self.host).parent
        script = (
            "set -e; "
            f"mount --bind {plugins} {self.run_dir}/docker/plugins; "
            f"mount --rbind {self.run_dir} /run; "
            f"exec {DOCKERD} --data-root /run/docker-data --exec-root /run/docker "
            "--pidfile /run/docker.pid -H unix:///run/docker.sock "
            "--bridge=none --iptables=false --ip-masq=false --ip6tables=false --ip-forward=false "
            "--storage-driver vfs --exec-opt native.cgroupdriver=cgroupfs "
            f"--cgroup-parent {self.cgroup_parent}")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.host.netns}", "unshare", "--mount",
                 "--propagation", "private", "sh", "-c", script],
                stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd on {self.host.name} exited: {self.log.read_text()[-2000:]}")
            if self.socket.exists() and self.docker("version", check=False).returncode == 0:
                self.mount_ns = _mnt_ns(self.proc.pid)
                return self
            time.sleep(0.2)
        raise RuntimeError(f"dockerd on {self.host.name} did not answer within {START_SECONDS:.0f}s")

    def argv(self) -> list[str]:
        """The docker command talking to this dockerd (arguments follow)."""
        return [DOCKER, "-H", f"unix://{self.socket}"]

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.argv(), *args], capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def container_pids(self) -> list[int]:
        """The processes of its containers (each in mount namespaces of their own),
        found by the cgroup parent this dockerd gives them."""
        marker = f"/{self.cgroup_parent}/".encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if marker in Path(f"/proc/{entry}/cgroup").read_bytes():
                        found.append(int(entry))
                except OSError:
                    continue
        return found

    def kill(self) -> None:
        """dockerd, its containerd and shims, and its containers, all at once: a dead engine."""
        for pid in processes_in_mount_ns(self.mount_ns or "") + self.container_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def restart(self) -> None:
        """Stop dockerd as systemd would (its containers stop with it) and start it
        again on the same data: its networks come back from its own store."""
        self._shutdown()
        self.start()

    def _shutdown(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.mount_ns is not None:
            for _ in range(50):
                left = processes_in_mount_ns(self.mount_ns) + self.container_pids()
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop dockerd and everything it started (killed if it does not stop them);
        its directory and its containers' cgroups go."""
        self._shutdown()
        remove_cgroups(self.cgroup_parent)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DockerDaemon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Podman:
    """podman on one lab host: its own configuration, storage and CNI networks."""

    def __init__(self, lab: Lab, host: LabHost):
        self.lab = lab
        self.host = host
        self.root = lab.state_dir / "engines" / f"podman-{host.name}"
        self.cni_dir = self.root / "cni"
        self.plugin_dir = self.root / "cni-bin"

    def start(self) -> Podman:
        for directory in (self.cni_dir, self.plugin_dir, self.root / "storage", self.root / "run",
                          self.root / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        # vxmesh-cni (this checkout's) and loopback, which podman always calls for lo.
        (self.plugin_dir / "vxmesh-cni").symlink_to(Path(sys.executable).parent / "vxmesh-cni")
        (self.plugin_dir / "loopback").symlink_to(CNI_PLUGINS / "loopback")
        (self.root / "containers.conf").write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            # crun refuses this machine's hybrid cgroup layout; runc takes it
            'runtime = "runc"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.root}/events.log"\n'
            f'tmp_dir = "{self.root}/tmp"\n'
            f'static_dir = "{self.root}/storage/libpod"\n'
            f'volume_path = "{self.root}/storage/volumes"\n'
            "[network]\n"
            'network_backend = "cni"\n'
            f'cni_plugin_dirs = ["{self.plugin_dir}"]\n'
            f'network_config_dir = "{self.cni_dir}"\n'
            'default_network = "vxmesh-default-unused"\n')
        (self.root / "registries.conf").write_text("unqualified-search-registries = []\n")
        (self.root / "storage.conf").write_text(
            "[storage]\n"
            'driver = "vfs"\n'
            f'runroot = "{self.root}/run"\n'
            f'graphroot = "{self.root}/storage"\n')
        return self

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.root / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(self.root / "storage.conf"),
                "CONTAINERS_REGISTRIES_CONF": str(self.root / "registries.conf"), "TMPDIR": str(self.root / "tmp")}

    def install_network(self, name: str, network: str) -> Path:
        """The conflist for vxmesh network `network`, as `vxmesh cni install` writes it."""
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", "cni", "install", "--network", network, "--name", name,
             "--socket", str(self.lab.plugin_socket(self.host)), "--dir", str(self.cni_dir)],
            capture_output=True, text=True, cwd=REPO_ROOT)
        if proc.returncode != 0:
            raise AssertionError(f"vxmesh cni install failed: {proc.stderr.strip()}")
        return self.cni_dir / f"{name}.conflist"

    def argv(self) -> list[str]:
        """The podman command in the host's namespace (arguments follow; run it with `env`)."""
        return ["nsenter", f"--net=/run/netns/{self.host.netns}", PODMAN, "--cgroup-manager", "cgroupfs"]

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.argv(), *args], capture_output=True, text=True, timeout=timeout,
                              env=self.env)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def stop(self) -> None:
        """Every container gone (their networks detached through vxmesh-cni), then podman's files."""
        if (self.root / "containers.conf").exists():
            self.podman("rm", "-af", "-t", "0", check=False)
        # conmon of a container podman failed to remove
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(self.root).encode() in cmdline:
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        subprocess.run(["umount", "-R", str(self.root)], capture_output=True)
        remove_cgroups(PODMAN_CGROUP_PARENT)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Podman:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def root_namespace_state() -> dict:
    """What the root network namespace holds, for a test to prove an engine left it alone."""
    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "addresses": sorted((a["ifname"], i["local"]) for a in json.loads(run("ip", "-j", "addr"))
                            for i in a.get("addr_info", [])),
        "routes": sorted(json.dumps(r, sort_keys=True) for r in json.loads(run("ip", "-j", "route", "show", "table", "all"))),
        "nft_tables": sorted(json.dumps(t, sort_keys=True) for t in json.loads(run("nft", "-j", "list", "tables"))["nftables"]
                             if "table" in t),
    }
