"""Docker's default confinement, tried from inside a default container as root, each beside a control.

Every attempt that must fail in a default container is also made with the
confinement switched off (`--privileged`, or the one knob that matters), to
show the attempt itself works and it is the confinement that stops it.
"""
from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from agent.oci import confinement
from agent.oci.model import Security
from proto.records import Mount
from tests.helpers.oci import make_config, needs_root, run_to_exit, wait_for_log

pytestmark = [pytest.mark.integration, needs_root]

PRIVILEGED = Security(privileged=True)


async def run(host, images, script: str, **options) -> tuple[int, str]:
    state, log = await run_to_exit(host, images.plain, ["sh", "-c", script], **options)
    return state.exit_code, log


def own_bounding_set() -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return line.split()[1]
    raise AssertionError("no CapBnd line")


async def test_capeff_is_dockers_default_mask(busybox_images, oci_host):
    code, log = await run(oci_host, busybox_images, "grep -E 'Cap(Eff|Prm|Bnd|Inh|Amb)' /proc/self/status")
    assert code == 0
    assert "CapEff:\t00000000a80425fb" in log and "CapBnd:\t00000000a80425fb" in log
    assert "CapInh:\t0000000000000000" in log and "CapAmb:\t0000000000000000" in log
    code, log = await run(oci_host, busybox_images, "grep CapEff /proc/self/status", security=PRIVILEGED)
    assert f"CapEff:\t{own_bounding_set()}" in log


async def test_mounting_a_tmpfs_is_refused(busybox_images, oci_host):
    code, log = await run(oci_host, busybox_images, "mount -t tmpfs none /mnt && echo mounted")
    assert code != 0 and "mounted" not in log
    assert "permission denied" in log.lower() or "not permitted" in log, log
    code, log = await run(oci_host, busybox_images, "mount -t tmpfs none /mnt && echo mounted",
                          security=PRIVILEGED)
    assert (code, log.strip()) == (0, "mounted")


async def test_proc_sys_is_read_only(busybox_images, oci_host):
    # net.ipv4 settings are the test namespace's own: writing them harms nothing.
    script = "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward"
    code, log = await run(oci_host, busybox_images, script)
    assert code != 0 and "Read-only file system" in log
    code, log = await run(oci_host, busybox_images, script, security=PRIVILEGED)
    assert (code, log.strip()) == (0, "1")


def has_content(path: Path) -> bool:
    try:
        return any(path.iterdir()) if path.is_dir() else bool(path.read_bytes())
    except OSError:
        return False


async def test_sys_is_read_only_and_host_information_is_masked(busybox_images, oci_host):
    # The masked paths with something in them on this host (/proc/kcore, for one, may be compiled out):
    # each reads empty in a default container, and has content with --privileged.
    masked = [p for p in confinement.MASKED_PATHS if has_content(Path(p))]
    assert "/proc/keys" in masked and "/proc/timer_list" in masked
    script = ("awk '$5 == \"/sys\" {print $6}' /proc/self/mountinfo; "
              + "; ".join(f"echo {p} $(cat {p} 2>/dev/null | wc -c) $(ls {p} 2>/dev/null | wc -l)"
                          for p in masked))
    code, log = await run(oci_host, busybox_images, script)
    mode, *sizes = log.splitlines()
    assert mode.startswith("ro,")
    assert all(line.split()[1:] in (["0", "0"], ["0", "1"]) for line in sizes), sizes
    code, log = await run(oci_host, busybox_images, script, security=PRIVILEGED)
    mode, *sizes = log.splitlines()
    assert mode.startswith("rw,")
    assert all(line.split()[1:] not in (["0", "0"], ["0", "1"]) for line in sizes), sizes


async def test_dev_holds_only_the_standard_devices(busybox_images, oci_host):
    script = "ls /dev; ls /dev/pts"
    code, log = await run(oci_host, busybox_images, script)
    names = set(log.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue"} <= names
    host_devices = {p.name for p in Path("/dev").iterdir()}
    assert not names & (host_devices - {"null", "zero", "full", "random", "urandom", "tty", "ptmx",
                                        "pts", "shm", "mqueue", "console", "core", "fd", "stdin",
                                        "stdout", "stderr"})
    code, log = await run(oci_host, busybox_images, "mknod /tmp/disk b 8 0 && cat /tmp/disk")
    assert code != 0 and "Operation not permitted" in log  # the device cgroup refuses the open


async def test_user_namespaces_cannot_be_made_without_the_seccomp_profile_off(busybox_images, oci_host):
    code, log = await run(oci_host, busybox_images, "unshare -U -r id -u")
    assert code != 0 and "Operation not permitted" in log
    code, log = await run(oci_host, busybox_images, "unshare -U -r id -u",
                          security=Security(seccomp="unconfined"))
    assert (code, log.strip()) == (0, "0")  # what the profile stops: no capability is needed for it


async def test_a_seccomp_profile_file_applies(busybox_images, oci_host):
    profile = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})
    script = "mkdir /tmp/made && echo made"
    code, log = await run(oci_host, busybox_images, script,
                          security=Security(seccomp="profile", seccomp_profile=profile))
    assert code != 0 and "Operation not permitted" in log
    code, log = await run(oci_host, busybox_images, script)
    assert (code, log.strip()) == (0, "made")


async def test_no_new_privileges_is_on(busybox_images, oci_host):
    code, log = await run(oci_host, busybox_images, "grep NoNewPrivs /proc/self/status")
    assert log.strip() == "NoNewPrivs:\t1"
    code, log = await run(oci_host, busybox_images, "grep NoNewPrivs /proc/self/status",
                          security=Security(no_new_privileges=False))
    assert log.strip() == "NoNewPrivs:\t0"


async def test_host_paths_are_not_visible_unless_bound(busybox_images, oci_host):
    secrets_dir = oci_host.root / "keys"
    secrets_dir.mkdir()
    key = secrets_dir / "ca-key.pem"
    key.write_text(f"secret-{secrets.token_hex(4)}\n")
    netns_dir = Path("/run/netns")
    assert any(netns_dir.iterdir())  # the host has namespaces there (this test's, at least)
    script = (f"cat {key}; ls /run/netns; ls {oci_host.root}; ls /sys/fs/cgroup/memory/{oci_host.cgroup_parent}"
              " >/dev/null 2>&1 && echo cgroup-parent-visible; echo done")
    code, log = await run(oci_host, busybox_images, script)
    assert key.read_text() not in log and "No such file or directory" in log
    assert "containers" not in log and log.strip().endswith("done")
    # The control: given with -v, the same file is there.
    code, log = await run(oci_host, busybox_images, f"cat /keys/{key.name}",
                          mounts=(Mount(str(secrets_dir), "/keys", readonly=True),))
    assert log == key.read_text()
    # Privileged or not, the host's root is never the container's.
    code, log = await run(oci_host, busybox_images, f"cat {key}", security=PRIVILEGED)
    assert key.read_text() not in log


async def test_another_containers_root_is_not_visible(busybox_images, oci_host):
    runtime = oci_host.runtime()
    other = make_config(oci_host, busybox_images.plain,
                        ["sh", "-c", "echo private > /only-mine; echo ready; sleep 1000"], name="other")
    await runtime.start(other)
    await wait_for_log(runtime, other.id, "ready")
    code, log = await run(oci_host, busybox_images,
                          "cat /only-mine; find / -xdev -name only-mine 2>/dev/null; echo end")
    assert "private" not in log and log.strip().splitlines()[-1] == "end"


async def test_network_configuration_needs_net_admin(busybox_images, oci_host):
    # Both ends inside the test's namespace (this kernel has no dummy driver).
    subprocess.run(["ip", "-n", oci_host.netns, "link", "add", "eth0", "type", "veth", "peer", "name",
                    "eth0peer"], check=True)
    script = "ip link set eth0 address 02:42:0a:00:00:99 && ip addr add 10.99.0.2/24 dev eth0 && echo configured"
    code, log = await run(oci_host, busybox_images, script)
    assert code != 0 and "configured" not in log and "Operation not permitted" in log
    code, log = await run(oci_host, busybox_images, "ip addr add 10.99.0.2/24 dev eth0")
    assert code != 0 and "Operation not permitted" in log
    code, log = await run(oci_host, busybox_images, script, security=PRIVILEGED)
    assert (code, log.strip()) == (0, "configured")
    code, log = await run(oci_host, busybox_images, "ip link set eth0 address 02:42:0a:00:00:98 && echo ok",
                          security=Security(cap_add=("NET_ADMIN",)))
    assert (code, log.strip()) == (0, "ok")  # the one capability is enough


async def test_cap_drop_all_takes_even_roots_file_powers(busybox_images, oci_host):
    script = "chown 1000 /tmp && echo chowned"
    code, log = await run(oci_host, busybox_images, script)
    assert (code, log.strip()) == (0, "chowned")
    code, log = await run(oci_host, busybox_images, script, security=Security(cap_drop=("ALL",)))
    assert code != 0 and "Operation not permitted" in log
