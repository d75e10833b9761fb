"""Bad input, end to end: the `vxmesh` command against a running lab.

The unit tests (test_ipam.py, test_store.py) check each rule where it is
made; this checks what a user sees: the CLI exits non-zero with one line on
stderr that names the problem, and etcd is untouched (the whole `/vxmesh/`
keyspace, values and revisions, is the same before and after).
"""
from __future__ import annotations

import json

import pytest

from deploy.lab import Lab
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import network, run

pytestmark = pytest.mark.integration

LONG = "n" * 80


@pytest.fixture(scope="module")
def lab(busybox_archive):
    # A real etcd member, so the test can read the keyspace itself.
    with lab_with_blue(hosts=1, image=busybox_archive, etcd_members=1) as lab:
        run(lab, "taken", 0)
        yield lab


def etcd_dump(lab: Lab) -> tuple[int, list]:
    reply = json.loads(lab.etcdctl("get", "--prefix", "/vxmesh/", "-w", "json").stdout)
    kvs = sorted((kv["key"], kv.get("value", ""), kv["mod_revision"]) for kv in reply.get("kvs", []))
    return reply["header"]["revision"], kvs


CASES = [
    # (id, argv, what the error must say)
    ("malformed-cidr", ("network", "create", "--subnet", "10.300.0.0/24", "bad1"), "invalid subnet '10.300.0.0/24'"),
    ("cidr-host-bits", ("network", "create", "--subnet", "10.60.0.1/24", "bad1"), "host bits are set"),
    ("cidr-not-ipv4", ("network", "create", "--subnet", "fd00::/64", "bad1"), "only IPv4 subnets"),
    ("gateway-outside", ("network", "create", "--subnet", "10.61.0.0/24", "--gateway", "10.62.0.1", "bad1"),
     "invalid gateway '10.62.0.1': it is outside the subnet 10.61.0.0/24"),
    ("vni-too-big", ("network", "create", "--subnet", "10.63.0.0/24", "--vni", "16777216", "bad1"),
     "invalid VNI 16777216"),
    ("vni-zero-is-auto-but-negative-is-not", ("network", "create", "--subnet", "10.63.0.0/24", "--vni", "-5", "bad1"),
     "invalid VNI -5"),
    ("vni-taken", ("network", "create", "--subnet", "10.64.0.0/24", "--vni", "{blue_vni}", "bad1"),
     "VNI {blue_vni} is already used by network 'blue'"),
    ("subnet-overlaps", ("network", "create", "--subnet", "10.77.0.128/25", "bad1"), "overlaps network 'blue'"),
    ("network-name-too-long", ("network", "create", "--subnet", "10.65.0.0/24", LONG), "invalid network name"),
    ("network-name-bad-chars", ("network", "create", "--subnet", "10.65.0.0/24", "bad/name"), "invalid network name"),
    ("network-exists", ("network", "create", "--subnet", "10.66.0.0/24", "blue"), "network 'blue' already exists"),
    ("container-name-too-long", ("run", "--name", LONG, "--network", "blue", BUSYBOX, "true"), "invalid container name"),
    ("container-name-bad-chars", ("run", "--name", "a b", "--network", "blue", BUSYBOX, "true"), "invalid container name"),
    ("unknown-host", ("run", "--name", "c-nohost", "--host", "nosuchhost", "--network", "blue", BUSYBOX, "true"),
     "no such host: 'nosuchhost'"),
    ("unknown-network", ("run", "--name", "c-nonet", "--network", "nosuchnet", BUSYBOX, "true"),
     "network 'nosuchnet' not found"),
    ("duplicate-container", ("run", "--name", "taken", "--network", "blue", BUSYBOX, "true"),
     "container 'taken' already exists"),
    ("connect-unknown-network", ("network", "connect", "nosuchnet", "taken"), "network 'nosuchnet' not found"),
    ("inspect-unknown-network", ("network", "inspect", "nosuchnet"), "network 'nosuchnet' not found"),
    ("rm-unknown-container", ("rm", "nosuchcontainer"), "container 'nosuchcontainer' not found"),
    ("rm-builtin-network", ("network", "rm", "bridge"), "pre-defined network"),
    ("rm-network-in-use", ("network", "rm", "blue"), "has active endpoints"),
    ("too-many-arguments", ("run", "--name", "c-args", "--network", "blue", BUSYBOX, "echo", *["x"] * 1024),
     "too many command arguments: 1025 (at most 1024)"),
    ("hostname-too-long", ("run", "--name", "c-hn", "--hostname", "h" * 64, "--network", "blue", BUSYBOX, "true"),
     "hostname is 64 characters (at most 63)"),
    # Images and confinement: checked before anything is stored.
    ("image-missing", ("run", "--name", "c-img", "--network", "blue", "busybox:nope"),
     "cannot run image busybox:nope: it is not in the cluster's registry"),
    ("image-reference-invalid", ("run", "--name", "c-ref", "--network", "blue", "Busybox"),
     "invalid image reference 'Busybox': the repository name must be lowercase"),
    ("capability-unknown", ("run", "--name", "c-cap", "--cap-add", "NET_MAGIC", BUSYBOX, "true"),
     "unknown capability 'NET_MAGIC'"),
    ("ulimit-soft-over-hard", ("run", "--name", "c-ul", "--ulimit", "nofile=10:5", BUSYBOX, "true"),
     "the soft limit must not exceed the hard limit"),
    ("security-opt-unknown", ("run", "--name", "c-so", "--security-opt", "apparmor=x", BUSYBOX, "true"),
     "unsupported --security-opt 'apparmor=x'"),
    ("seccomp-profile-missing", ("run", "--name", "c-sp", "--security-opt", "seccomp=/nonexistent.json",
                                 BUSYBOX, "true"), "cannot read seccomp profile /nonexistent.json"),
    ("workdir-relative", ("run", "--name", "c-wd", "-w", "srv", BUSYBOX, "true"),
     "the working directory must be an absolute path"),
    ("image-rm-unknown", ("image", "rm", "nosuch:1"), "no such image: nosuch:1"),
]


@pytest.mark.parametrize("argv,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_changes_nothing(lab, argv, message):
    vni = str(network(lab)["vni"])
    argv = [a.replace("{blue_vni}", vni) for a in argv]
    message = message.replace("{blue_vni}", vni)
    before = etcd_dump(lab)
    proc = lab.cli(*argv, check=False)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert etcd_dump(lab) == before
