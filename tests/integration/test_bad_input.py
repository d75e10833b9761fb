"""Bad input, end to end: the `vxmesh` command against a running lab.

The unit tests (test_ipam.py, test_store.py) check each rule where it is
made; this checks what a user sees: the CLI exits non-zero with one line on
stderr that names the problem, and etcd is untouched (the whole `/vxmesh/`
keyspace, values and revisions, is the same before and after).
"""
from __future__ import annotations

import json

import grpc
import pytest

from deploy.lab import Lab
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
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
    # Subnets a network may not take: the hosts' own (from their hellos: the lab's
    # underlay 10.231.0.0/24, the default gwbridge and bridge subnets) ...
    ("subnet-is-the-underlay", ("network", "create", "--subnet", "10.231.0.0/24", "bad1"),
     "subnet 10.231.0.0/24 overlaps the underlay of host {host} (10.231.0.0/24)"),
    ("subnet-in-the-underlay", ("network", "create", "--subnet", "10.231.0.128/25", "bad1"),
     "subnet 10.231.0.128/25 overlaps the underlay of host {host} (10.231.0.0/24)"),
    ("subnet-in-the-gwbridge", ("network", "create", "--subnet", "172.18.3.0/24", "bad1"),
     "subnet 172.18.3.0/24 overlaps the gwbridge of host {host} (172.18.0.0/16)"),
    ("bridge-subnet-is-the-default-bridge", ("network", "create", "--driver", "bridge", "--subnet", "172.17.0.0/16",
                                             "bad1"),
     "subnet 172.17.0.0/16 overlaps the default bridge of host {host} (172.17.0.0/16)"),
    # ... and space that is not unicast.
    ("subnet-loopback", ("network", "create", "--subnet", "127.0.0.0/24", "bad1"),
     "subnet 127.0.0.0/24 overlaps 127.0.0.0/8, loopback"),
    ("subnet-this-network", ("network", "create", "--subnet", "0.0.0.0/8", "bad1"),
     'subnet 0.0.0.0/8 overlaps 0.0.0.0/8, "this network"'),
    ("subnet-link-local", ("network", "create", "--subnet", "169.254.0.0/16", "bad1"),
     "subnet 169.254.0.0/16 overlaps 169.254.0.0/16, link-local"),
    ("subnet-multicast", ("network", "create", "--subnet", "224.0.0.0/24", "bad1"),
     "subnet 224.0.0.0/24 overlaps 224.0.0.0/4, multicast"),
    ("subnet-reserved", ("network", "create", "--subnet", "240.0.0.0/24", "bad1"),
     "subnet 240.0.0.0/24 overlaps 240.0.0.0/4, reserved"),
    # Hostnames that are not RFC 1123, with an address and a published port asked
    # for: none of them may be reserved.
    *((f"hostname-{case}", ("run", "--name", "c-hn", "--hostname", hostname, "--network", "blue",
                            "-p", "8080:80", BUSYBOX, "true"), f"invalid hostname {hostname!r}")
      for case, hostname in (("space", "a b"), ("slash", "a/b"), ("newline", "a\nb"), ("dot-dot", "../etc"),
                             ("trailing-dash", "web-"))),
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
    host = lab.hosts[0].name
    argv = [a.replace("{blue_vni}", vni) for a in argv]
    message = message.replace("{blue_vni}", vni).replace("{host}", host)
    before = etcd_dump(lab)
    proc = lab.cli(*argv, check=False)
    # `run` fails as Docker's does, with 125; every other command with 1.
    assert proc.returncode == (125 if argv[0] == "run" else 1), (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert etcd_dump(lab) == before


def test_a_nul_in_a_hostname_is_refused_before_anything_is_stored(lab):
    """What no command line can carry (a NUL), sent to the API itself with an
    address and a published port asked for: refused, etcd unchanged."""
    before = etcd_dump(lab)
    with grpc.insecure_channel(f"unix://{lab.controller_socket}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.ControllerStub(channel).Run(pb.RunRequest(
                name="c-nul", host=lab.hosts[0].name, networks=["blue"], command=["true"],
                hostname="web\x00evil", ports=[pb.PortMapping(protocol="tcp", host_port=8081, container_port=80)]),
                timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "invalid hostname 'web\\x00evil': it must be RFC 1123 labels (letters, digits " \
                                  "and '-', not starting or ending with '-') joined by dots"
    assert etcd_dump(lab) == before
