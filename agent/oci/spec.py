"""The OCI runtime config (a bundle's config.json) for a container: pure, so tests can read it.

Everything a container is allowed to do is decided here: namespaces (the
network one joined by path), the process (args, env, cwd, user, rlimits,
capabilities, no_new_privileges), mounts, cgroup limits, and the confinement
defaults of confinement.py and seccomp.py unless `--privileged` or
`--security-opt` switch them off.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from agent.oci import confinement, seccomp
from agent.oci.model import ContainerConfig
from agent.oci.process import Process
from proto.run_options import SECCOMP_DEFAULT, SECCOMP_PROFILE, UNLIMITED

OCI_VERSION = "1.0.2"
ROOTFS = "rootfs"           # the bundle's rootfs directory, relative to the bundle
CPU_PERIOD_US = 100_000
RLIM_INFINITY = 2**64 - 1


@dataclass(frozen=True)
class HostFacts:
    """What the host decides about a container's config.json."""
    cgroups_path: str           # "/<parent>/<id>" in every hierarchy (cgroupfs manager)
    swap_limit: bool = True     # memory+swap can be limited (swap accounting is on)
    cgroup_namespace: bool = False   # cgroup v2: the container sees its cgroup as its root
    machine: str = "x86_64"


def build(config: ContainerConfig, process: Process, host: HostFacts,
          etc_files: dict[str, str]) -> dict:
    """config.json; `etc_files` maps container paths (/etc/hosts, ...) to host files to bind."""
    security = config.security
    caps = security.capabilities()
    confined = not security.privileged
    linux: dict = {
        "namespaces": _namespaces(config, host),
        "cgroupsPath": host.cgroups_path,
        "resources": _resources(config, host),
    }
    if confined:
        linux["maskedPaths"] = list(confinement.MASKED_PATHS)
        linux["readonlyPaths"] = list(confinement.READONLY_PATHS)
        profile = _seccomp(config, caps, host.machine)
        if profile is not None:
            linux["seccomp"] = profile
    return {
        "ociVersion": OCI_VERSION,
        "root": {"path": ROOTFS, "readonly": config.read_only},
        "hostname": config.hostname,
        "process": process_spec(process, caps, config),
        "mounts": _mounts(config, etc_files),
        "linux": linux,
        "annotations": {"org.vxmesh.container.name": config.name,
                        "org.vxmesh.image": config.image.reference},
    }


CONTAINER_UMASK = 0o022


def process_spec(process: Process, caps: list[str], config: ContainerConfig) -> dict:
    """The OCI process object; also what `exec` runs with, its args replaced."""
    # Docker's umask inside the container, whatever the agent's own (0077,
    # agent/main.py) that conmon and crun inherit.
    user: dict = {"uid": process.user.uid, "gid": process.user.gid, "umask": CONTAINER_UMASK}
    if process.user.additional_gids:
        user["additionalGids"] = list(process.user.additional_gids)
    spec: dict = {
        # run -t: crun makes a terminal and hands its master to the agent (first_process_io.py).
        "terminal": config.tty,
        "user": user,
        "args": list(process.args),
        "env": list(process.env),
        "cwd": process.cwd,
        # Bounding, effective and permitted alike, as Docker: nothing
        # inheritable or ambient, so a non-root user's exec clears them.
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": config.security.no_new_privileges and not config.security.privileged,
    }
    if config.ulimits:
        spec["rlimits"] = [{"type": f"RLIMIT_{u.name.upper()}", "soft": _rlimit(u.soft),
                            "hard": _rlimit(u.hard)} for u in config.ulimits]
    return spec


def _namespaces(config: ContainerConfig, host: HostFacts) -> list[dict]:
    namespaces = [{"type": kind} for kind in ("pid", "ipc", "uts", "mount")]
    if host.cgroup_namespace:
        namespaces.append({"type": "cgroup"})
    if config.netns_path:
        namespaces.append({"type": "network", "path": config.netns_path})
    return namespaces


def _resources(config: ContainerConfig, host: HostFacts) -> dict:
    res = config.resources
    resources: dict = {"devices": confinement.device_rules(privileged=config.security.privileged)}
    if res.memory_bytes:
        resources["memory"] = {"limit": res.memory_bytes}
        if host.swap_limit:
            resources["memory"]["swap"] = res.memory_bytes  # memory+swap = memory: no swap
    if res.cpus:
        resources["cpu"] = {"quota": round(res.cpus * CPU_PERIOD_US), "period": CPU_PERIOD_US}
    if res.pids_limit:
        resources["pids"] = {"limit": res.pids_limit}
    return resources


def _mounts(config: ContainerConfig, etc_files: dict[str, str]) -> list[dict]:
    mounts = confinement.default_mounts(privileged=config.security.privileged)
    files_mode = ["ro"] if config.read_only else []
    for target, source in sorted(etc_files.items()):
        mounts.append({"destination": target, "type": "bind", "source": source,
                       "options": ["rbind", "rprivate", *files_mode]})
    # Parents before children: a bind on /data/x must land inside one on /data.
    for mount in sorted(config.mounts, key=lambda m: len(PurePosixPath(m.target).parts)):
        mounts.append({"destination": mount.target, "type": "bind", "source": mount.source,
                       "options": ["rbind", "rprivate", *(["ro"] if mount.readonly else [])]})
    return mounts


def _seccomp(config: ContainerConfig, caps: list[str], machine: str) -> dict | None:
    security = config.security
    if security.seccomp == SECCOMP_DEFAULT:
        return seccomp.default_profile(caps, machine)
    if security.seccomp == SECCOMP_PROFILE:
        return seccomp.custom_profile(security.seccomp_profile, caps, machine)
    return None  # unconfined


def _rlimit(value: int) -> int:
    return RLIM_INFINITY if value == UNLIMITED else value
