"""agent.oci.process and agent.oci.spec: the container's process and its config.json, as Docker would make them."""
from __future__ import annotations

import dataclasses
import json
import secrets

import pytest

from agent.images.image import Image
from agent.oci import confinement, process, spec
from agent.oci.model import ContainerConfig, ContainerError, Resources, Security
from agent.oci.users import User
from proto import capabilities
from proto.image_config import ImageConfig
from proto.records import Mount, Ulimit

DOCKER_DEFAULT_CAPS = capabilities.resolve()
HOST = spec.HostFacts(cgroups_path="/vxmesh-h1/abc", swap_limit=True, machine="x86_64")
ROOT = User(0, 0, (), "/root")


def make_image(tmp_path, **config) -> Image:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(exist_ok=True)
    return Image(reference="docker.io/library/busybox:latest", id="sha256:" + "1" * 64,
                 digest="sha256:" + "2" * 64, config=ImageConfig(**config), rootfs=rootfs, size=1)


def make_config(tmp_path, image_config: dict | None = None, **options) -> ContainerConfig:
    options.setdefault("netns_path", "")
    return ContainerConfig(id=secrets.token_hex(32), name="web", hostname="web",
                           image=make_image(tmp_path, **(image_config or {})), **options)


def build(config: ContainerConfig, user: User = ROOT) -> dict:
    document = spec.build(config, process.resolve(config, user), HOST,
                          {"/etc/hosts": "/state/etc/hosts"})
    json.dumps(document)
    return document


# -- the process, from image and options -----------------------------------------------

@pytest.mark.parametrize("entrypoint, cmd, override_entrypoint, override_command, expected", [
    ((), ("sh",), None, None, ("sh",)),
    (("/entry.sh",), ("serve", "-v"), None, None, ("/entry.sh", "serve", "-v")),
    (("/entry.sh",), ("serve",), None, ("migrate",), ("/entry.sh", "migrate")),
    (("/entry.sh",), ("serve",), ("/bin/sh",), None, ("/bin/sh",)),     # --entrypoint drops Cmd
    (("/entry.sh",), ("serve",), ("/bin/sh",), ("-c", "id"), ("/bin/sh", "-c", "id")),
    (("/entry.sh",), ("serve",), (), ("ls",), ("ls",)),                 # --entrypoint "" clears it
])
def test_args_follow_dockers_entrypoint_and_cmd_rules(entrypoint, cmd, override_entrypoint,
                                                      override_command, expected):
    image = ImageConfig(entrypoint=entrypoint, cmd=cmd)
    assert process.args(image, override_entrypoint, override_command) == expected


def test_no_command_at_all_is_an_error():
    with pytest.raises(ContainerError, match="no command specified"):
        process.args(ImageConfig(), None, None)
    with pytest.raises(ContainerError, match="no command specified"):
        process.args(ImageConfig(entrypoint=("x",), cmd=("y",)), (), None)


def test_environment_layers_options_over_the_image_with_dockers_defaults():
    image = ImageConfig(env=("PATH=/opt/bin:/bin", "LANG=C", "MODE=image"))
    env = process.environment(image, {"MODE": "run", "EXTRA": "1"}, "web", User(1000, 1000, (), "/home/app"))
    assert env == ("PATH=/opt/bin:/bin", "HOSTNAME=web", "LANG=C", "MODE=run", "EXTRA=1",
                   "HOME=/home/app")
    bare = process.environment(ImageConfig(), {"HOME": "/x"}, "h", ROOT)
    assert f"PATH={process.DEFAULT_PATH}" in bare and "HOME=/x" in bare


def test_working_directory():
    assert process.working_dir(ImageConfig(), "") == "/"
    assert process.working_dir(ImageConfig(working_dir="/srv"), "") == "/srv"
    assert process.working_dir(ImageConfig(working_dir="/srv"), "/data/") == "/data"
    assert process.working_dir(ImageConfig(working_dir="app"), "") == "/app"


# -- config.json ---------------------------------------------------------------------------

def test_the_default_container_gets_dockers_confinement(tmp_path):
    document = build(make_config(tmp_path, {"cmd": ("sh",)}))
    proc = document["process"]
    assert proc["capabilities"] == {"bounding": DOCKER_DEFAULT_CAPS, "effective": DOCKER_DEFAULT_CAPS,
                                    "permitted": DOCKER_DEFAULT_CAPS}
    assert proc["noNewPrivileges"] is True and proc["terminal"] is False
    assert proc["user"] == {"uid": 0, "gid": 0, "umask": 0o022}
    linux = document["linux"]
    assert linux["maskedPaths"] == list(confinement.MASKED_PATHS)
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/scsi",
                 "/proc/acpi", "/proc/latency_stats", "/proc/timer_stats", "/proc/sched_debug"):
        assert path in linux["maskedPaths"]
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq"):
        assert path in linux["readonlyPaths"]
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    mounts = {m["destination"]: m for m in document["mounts"]}
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert mounts["/dev"]["type"] == "tmpfs" and mounts["/dev/pts"]["type"] == "devpts"
    assert {"/dev/shm", "/dev/mqueue", "/proc"} <= set(mounts)
    assert mounts["/etc/hosts"] == {"destination": "/etc/hosts", "type": "bind",
                                    "source": "/state/etc/hosts", "options": ["rbind", "rprivate"]}
    devices = linux["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in devices
    assert not any(d.get("major") in (8, 10, 4) for d in devices)  # no disks, misc, consoles


def test_namespaces_join_the_prepared_network_by_path(tmp_path):
    document = build(make_config(tmp_path, {"cmd": ("sh",)}, netns_path="/run/netns/vxm-h1-cabc"))
    kinds = {ns["type"]: ns for ns in document["linux"]["namespaces"]}
    assert set(kinds) == {"pid", "ipc", "uts", "mount", "network"}
    assert kinds["network"] == {"type": "network", "path": "/run/netns/vxm-h1-cabc"}
    host_network = build(make_config(tmp_path, {"cmd": ("sh",)}))
    assert "network" not in {ns["type"] for ns in host_network["linux"]["namespaces"]}
    unified = spec.build(make_config(tmp_path, {"cmd": ("sh",)}),
                         process.resolve(make_config(tmp_path, {"cmd": ("sh",)}), ROOT),
                         dataclasses.replace(HOST, cgroup_namespace=True), {})
    assert {"type": "cgroup"} in unified["linux"]["namespaces"]
    assert document["hostname"] == "web" and document["root"] == {"path": "rootfs", "readonly": False}


def test_limits_binds_ulimits_and_read_only(tmp_path):
    source = tmp_path / "data"
    source.mkdir()
    config = make_config(
        tmp_path, {"cmd": ("sh",)}, read_only=True,
        mounts=(Mount(str(source), "/data/inner"), Mount(str(source), "/data", readonly=True)),
        resources=Resources(memory_bytes=64 << 20, cpus=0.5, pids_limit=50),
        ulimits=(Ulimit("nofile", 1024, 2048), Ulimit("core", -1, -1)))
    document = build(config, User(1000, 1000, (50,), "/home/app"))
    resources = document["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    assert resources["cpu"] == {"quota": 50_000, "period": 100_000}
    assert resources["pids"] == {"limit": 50}
    assert document["linux"]["cgroupsPath"] == "/vxmesh-h1/abc"
    binds = [m for m in document["mounts"] if m["source"] == str(source)]
    assert [m["destination"] for m in binds] == ["/data", "/data/inner"]  # parents first
    assert binds[0]["options"] == ["rbind", "rprivate", "ro"] and "ro" not in binds[1]["options"]
    assert document["root"]["readonly"] is True
    assert document["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
        {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    assert document["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [50], "umask": 0o022}
    no_swap = spec.build(config, process.resolve(config, ROOT),
                         dataclasses.replace(HOST, swap_limit=False), {})
    assert no_swap["linux"]["resources"]["memory"] == {"limit": 64 << 20}


def test_privileged_switches_the_confinement_off(tmp_path):
    document = build(make_config(tmp_path, {"cmd": ("sh",)}, security=Security(privileged=True)))
    caps = document["process"]["capabilities"]["effective"]
    assert "CAP_SYS_ADMIN" in caps and "CAP_NET_ADMIN" in caps
    assert document["process"]["noNewPrivileges"] is False
    linux = document["linux"]
    assert "seccomp" not in linux and "maskedPaths" not in linux and "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    mounts = {m["destination"]: m for m in document["mounts"]}
    assert "rw" in mounts["/sys"]["options"]


def test_capabilities_and_seccomp_options(tmp_path):
    dropped = build(make_config(tmp_path, {"cmd": ("sh",)},
                                security=Security(cap_drop=("ALL",), cap_add=("NET_BIND_SERVICE",))))
    assert dropped["process"]["capabilities"]["bounding"] == ["CAP_NET_BIND_SERVICE"]
    unconfined = build(make_config(tmp_path, {"cmd": ("sh",)}, security=Security(seccomp="unconfined")))
    assert "seccomp" not in unconfined["linux"] and "maskedPaths" in unconfined["linux"]
    custom = '{"defaultAction": "SCMP_ACT_LOG", "syscalls": []}'
    profiled = build(make_config(tmp_path, {"cmd": ("sh",)},
                                 security=Security(seccomp="profile", seccomp_profile=custom)))
    assert profiled["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_LOG", "syscalls": []}
    admin = build(make_config(tmp_path, {"cmd": ("sh",)}, security=Security(cap_add=("SYS_ADMIN",))))
    assert "mount" in admin["linux"]["seccomp"]["syscalls"][0]["names"]
    relaxed = build(make_config(tmp_path, {"cmd": ("sh",)}, security=Security(no_new_privileges=False)))
    assert relaxed["process"]["noNewPrivileges"] is False


@pytest.mark.parametrize("options, message", [
    (dict(hostname=""), "hostname '' must be 1 to 64 bytes"),
    (dict(hostname="h" * 65), "must be 1 to 64 bytes"),
    (dict(netns_path="/run/netns/does-not-exist"), "network namespace /run/netns/does-not-exist"),
    (dict(env={"A=B": "1"}), "invalid environment variable 'A=B'"),
    (dict(working_dir="relative"), "working directory 'relative' is not absolute"),
    (dict(mounts=(Mount("relative", "/x"),)), "source is not an absolute path"),
    (dict(mounts=(Mount("/", "/"),)), "cannot mount over the container's /"),
    (dict(mounts=(Mount("/", "/a/../b"),)), "must not contain '..'"),
    (dict(mounts=(Mount("/", "/x"), Mount("/tmp", "/x"))), "two mounts on target /x"),
    (dict(resources=Resources(memory_bytes=5 << 20)), "below the minimum"),
    (dict(resources=Resources(cpus=0.001)), "cpus 0.001 must be between"),
    (dict(resources=Resources(pids_limit=-1)), "pids limit -1"),
    (dict(security=Security(cap_add=("NOPE",))), "unknown capability 'NOPE'"),
    (dict(security=Security(seccomp="strict")), "seccomp 'strict' is not one of"),
    (dict(security=Security(seccomp="profile", seccomp_profile="[]")), "defaultAction"),
    (dict(ulimits=(Ulimit("nofile", 1, 1), Ulimit("nofile", 2, 2))), "a ulimit is given twice"),
    (dict(id="not-an-id"), "invalid container id"),
])
def test_a_config_that_cannot_work_is_refused_naming_the_field(tmp_path, options, message):
    config = dataclasses.replace(make_config(tmp_path, {"cmd": ("sh",)}), **options)
    with pytest.raises(ContainerError, match=message):
        config.check()


def test_an_image_that_is_not_unpacked_is_refused(tmp_path):
    config = make_config(tmp_path, {"cmd": ("sh",)})
    config.image.rootfs.rmdir()
    with pytest.raises(ContainerError, match="is not unpacked"):
        config.check()
