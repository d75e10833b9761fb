"""Size limits inside requests: each refusal names the field and its limit."""
from __future__ import annotations

import pytest

from controller import request_limits as limits
from proto.errors import InvalidArgument
from proto import vxmesh_pb2 as pb


def run_request(**fields) -> pb.RunRequest:
    return pb.RunRequest(**{"name": "c1", "networks": ["blue"], "command": ["sleep", "1"], **fields})


def test_an_ordinary_run_passes():
    limits.check_run(run_request(env={"A": "1"}, hostname="web",
                                 mounts=[pb.Mount(source="/srv", target="/data")]))


@pytest.mark.parametrize("fields,message", [
    ({"command": ["x"] * (limits.MAX_COMMAND_ARGS + 1)}, "too many command arguments"),
    ({"command": ["x" * (limits.MAX_ARG_BYTES + 1)]}, "command argument 0 is"),
    ({"command": ["x" * limits.MAX_ARG_BYTES] * 9}, "command is 147456 bytes in all"),
    ({"env": {f"K{i}": "v" for i in range(limits.MAX_ENV_VARS + 1)}}, "too many environment variables"),
    ({"env": {"K": "v" * limits.MAX_ENV_BYTES}}, "environment is"),
    ({"ports": [pb.PortMapping(host_port=1000 + i, container_port=80) for i in range(limits.MAX_PORTS + 1)]},
     "too many published ports"),
    ({"mounts": [pb.Mount(source=f"/s{i}", target=f"/t{i}") for i in range(limits.MAX_MOUNTS + 1)]},
     "too many mounts"),
    ({"mounts": [pb.Mount(source="/" + "s" * limits.MAX_PATH_BYTES, target="/t")]}, "bytes (at most 4096)"),
    ({"hostname": "h" * 64}, "hostname is 64 characters"),
    ({"entrypoint": ["x"] * (limits.MAX_COMMAND_ARGS + 1)}, "too many entrypoint arguments"),
    ({"image": "a" * (limits.MAX_IMAGE_REFERENCE + 1)}, "image reference is 513 bytes"),
    ({"user": "u" * (limits.MAX_USER + 1)}, "user is 257 bytes"),
    ({"working_dir": "/" + "w" * limits.MAX_PATH_BYTES}, "bytes (at most 4096)"),
    ({"cap_add": ["CAP_CHOWN"] * (limits.MAX_CAPABILITIES + 1)}, "too many --cap-add capabilities"),
    ({"cap_drop": ["CAP_CHOWN"] * (limits.MAX_CAPABILITIES + 1)}, "too many --cap-drop capabilities"),
    ({"ulimits": [pb.Ulimit(name="nofile", soft=1, hard=1)] * (limits.MAX_ULIMITS + 1)}, "too many ulimits"),
    ({"seccomp_profile": "x" * (limits.MAX_SECCOMP_PROFILE_BYTES + 1)}, "seccomp profile is"),
])
def test_oversized_run_requests_are_refused(fields, message):
    request = run_request(**fields)
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        limits.check_run(request)


def test_too_many_networks_is_refused():
    with pytest.raises(InvalidArgument, match="too many networks: 17"):
        limits.check_run(pb.RunRequest(name="c1", command=["true"], networks=[f"n{i}" for i in range(17)]))


def test_exec_and_network_options_and_hello_have_limits():
    with pytest.raises(InvalidArgument, match="too many exec command arguments"):
        limits.check_exec(pb.ExecRequest(container="c1", command=["x"] * (limits.MAX_COMMAND_ARGS + 1)))
    with pytest.raises(InvalidArgument, match="too many network options"):
        limits.check_network_options({f"o{i}": "" for i in range(limits.MAX_NETWORK_OPTIONS + 1)})
    with pytest.raises(InvalidArgument, match="longer than 1024 bytes"):
        limits.check_network_options({"o": "v" * 1024})
    assert limits.hello_problem(pb.Hello(networks=["blue"], containers=["c1"])) is None
    big = pb.Hello(networks=[f"n{i}" for i in range(limits.MAX_HELLO_NETWORKS + 1)])
    assert limits.hello_problem(big) == "hello lists 10001 networks (at most 10000)"


def test_a_nul_byte_in_a_command_is_one_clear_refusal():
    with pytest.raises(InvalidArgument, match="exec command argument 1 contains a NUL byte"):
        limits.check_exec(pb.ExecRequest(container="c", command=["echo", "a\0b"]))


def test_an_error_quoting_a_huge_name_stays_within_grpc_header_limits():
    from controller.user_errors import MAX_MESSAGE, bounded
    assert bounded("short") == "short"
    cut = bounded("container " + "n" * 10_000 + " not found")
    assert len(cut) == MAX_MESSAGE and cut.startswith("container nnn") and cut.endswith("nnn' not found"[-10:])
