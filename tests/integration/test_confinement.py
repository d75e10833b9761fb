"""Docker's default confinement, tried as a user would: from inside containers run by `vxmesh run`.

One lab host runs a default container and a `--privileged` one (the
control: each refused attempt works there, or, for what a container must
not see, in a container given the path with `-v`), and containers for
--cap-add, --cap-drop, --security-opt, --read-only and --ulimit. Every
attempt runs as root inside the container, through `vxmesh exec`, which
runs with the container's own confinement. tests/integration/test_oci_confinement.py
checks the same at the runtime's level, and more (masked paths, /dev).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploy.lab import Lab
from proto import capabilities
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import running_lab
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

DOCKER_DEFAULT = f"{capabilities.mask(capabilities.DEFAULT):016x}"    # 00000000a80425fb


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with running_lab(hosts=1, image=busybox_archive) as lab:
        start(lab, "plain")
        start(lab, "priv", "--privileged")
        yield lab


def start(lab: Lab, name: str, *options: str, command: tuple[str, ...] = ("sleep", "3600")) -> None:
    lab.cli("run", "-d", "--name", name, "--host", lab.hosts[0].name, *options, BUSYBOX, *command)


def attempt(lab: Lab, container: str, script: str) -> subprocess.CompletedProcess:
    return lab.cli("exec", container, "--", "sh", "-c", script, check=False)


def cap_eff(lab: Lab, container: str) -> str:
    line = attempt(lab, container, "grep CapEff /proc/self/status").stdout
    return line.split()[1]


def test_capeff_is_dockers_default_set(lab):
    assert cap_eff(lab, "plain") == DOCKER_DEFAULT
    privileged = capabilities.from_mask(int(cap_eff(lab, "priv"), 16))
    assert {"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_MODULE"} <= set(privileged)


def test_mounting_a_tmpfs_is_refused(lab):
    script = "mount -t tmpfs none /mnt && echo mounted"
    refused = attempt(lab, "plain", script)
    assert refused.returncode != 0 and "mounted" not in refused.stdout and "permission denied" in refused.stderr
    assert attempt(lab, "priv", script).stdout == "mounted\n"


def test_proc_sys_is_read_only(lab):
    # net.ipv4 settings belong to the container's own network namespace.
    script = "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward"
    refused = attempt(lab, "plain", script)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    assert attempt(lab, "priv", script).stdout == "1\n"


def test_network_configuration_needs_net_admin(lab):
    for script in ("ip link set eth0 address 02:42:ac:11:00:99", "ip addr add 10.99.0.2/24 dev eth0"):
        refused = attempt(lab, "plain", script)
        assert refused.returncode != 0 and "Operation not permitted" in refused.stderr, script
        assert attempt(lab, "priv", f"{script} && echo done").stdout == "done\n", script
    start(lab, "netadmin", "--cap-add", "net_admin")          # the one capability is enough
    assert attempt(lab, "netadmin", "ip addr add 10.99.0.3/24 dev eth0 && echo done").stdout == "done\n"


def test_the_hosts_secrets_sockets_and_namespaces_are_not_visible(lab):
    ca_key = lab.tls_dir / "ca-key.pem"
    socket = Path(lab.controller_socket)
    assert ca_key.is_file() and socket.is_socket() and any(Path("/run/netns").iterdir())
    probe = (f"cat {ca_key} >/dev/null 2>&1 && echo key; test -S {socket} && echo socket; "
             "ls /run/netns 2>/dev/null | grep -q . && echo netns; ls /run/vxmesh 2>/dev/null && echo state; "
             "echo probed")
    for container in ("plain", "priv"):        # privileged or not, the root is the image's
        assert attempt(lab, container, probe).stdout == "probed\n", container
    # The control: given with -v, each is there, and the probe finds it.
    start(lab, "bound", "-v", f"{lab.tls_dir}:{lab.tls_dir}:ro", "-v", f"{socket}:{socket}",
          "-v", "/run/netns:/run/netns:ro")
    assert attempt(lab, "bound", probe).stdout == "key\nsocket\nnetns\nprobed\n"


def test_another_containers_root_filesystem_is_not_visible(lab):
    start(lab, "other", command=("sh", "-c", "echo private > /only-mine; sleep 3600"))
    wait_for(lambda: attempt(lab, "other", "cat /only-mine").stdout == "private\n",
             what="the other container's file")                       # the control: it is there
    probe = "cat /only-mine; find / -xdev -name only-mine 2>/dev/null; ls /proc | grep -c '^[0-9]'; echo end"
    for container in ("plain", "priv"):
        out = attempt(lab, container, probe).stdout
        assert "private" not in out and "/only-mine" not in out, (container, out)
        # Its own PID namespace: its sleep, the exec's shell and ls, grep.
        assert int(out.splitlines()[-2]) <= 5, (container, out)


def test_seccomp_refuses_user_namespaces_unless_unconfined(lab):
    refused = attempt(lab, "plain", "unshare -U -r id -u")
    assert refused.returncode != 0 and "Operation not permitted" in refused.stderr
    start(lab, "unconfined", "--security-opt", "seccomp=unconfined")
    assert attempt(lab, "unconfined", "unshare -U -r id -u").stdout == "0\n"


def test_cap_drop_read_only_and_ulimit(lab):
    script = "chown 1000 /tmp && echo chowned"
    assert attempt(lab, "plain", script).stdout == "chowned\n"
    start(lab, "nocaps", "--cap-drop", "ALL")
    assert cap_eff(lab, "nocaps") == "0" * 16
    assert "Operation not permitted" in attempt(lab, "nocaps", script).stderr
    start(lab, "readonly", "--read-only", "--ulimit", "nofile=512:1024")
    refused = attempt(lab, "readonly", "touch /etc/new")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    assert attempt(lab, "readonly", "ulimit -Sn; ulimit -Hn").stdout == "512\n1024\n"
    assert attempt(lab, "plain", "touch /etc/new && echo made").stdout == "made\n"
