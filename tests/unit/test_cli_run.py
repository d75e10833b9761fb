"""`vxmesh run IMAGE [COMMAND]` as Docker parses it, checked before any request goes out (pure)."""
from __future__ import annotations

import json

import pytest

from cli.commands.containers import run_request
from cli.parser import build_parser
from proto import vxmesh_pb2 as pb
from proto.errors import InvalidArgument


def request(*argv: str) -> pb.RunRequest:
    return run_request(build_parser().parse_args(["run", "--name", "c1", *argv]))


def test_options_before_the_image_and_the_command_after_it():
    r = request("-e", "A=1", "busybox", "sh", "-c", "echo -e hi", "--name", "not-an-option")
    assert (r.image, list(r.command), dict(r.env)) == ("busybox", ["sh", "-c", "echo -e hi", "--name",
                                                                   "not-an-option"], {"A": "1"})
    assert list(request("busybox").command) == []        # the image's Cmd


def test_an_entrypoint_absent_given_or_empty():
    assert (list(request("busybox").entrypoint), request("busybox").entrypoint_set) == ([], False)
    given = request("--entrypoint", "env", "busybox")
    assert (list(given.entrypoint), given.entrypoint_set) == (["env"], True)
    empty = request("--entrypoint", "", "busybox", "echo", "x")
    assert (list(empty.entrypoint), empty.entrypoint_set) == ([], True)


def test_process_and_confinement_options(tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    r = request("-w", "/srv", "-u", "app:staff", "--read-only", "--cap-add", "net_admin", "--cap-drop", "all",
                "--security-opt", f"seccomp={profile}", "--security-opt", "no-new-privileges=false",
                "--ulimit", "nofile=512:1024", "busybox")
    assert (r.working_dir, r.user, r.read_only) == ("/srv", "app:staff", True)
    assert (list(r.cap_add), list(r.cap_drop), r.privileged) == (["CAP_NET_ADMIN"], ["ALL"], False)
    assert (r.seccomp, json.loads(r.seccomp_profile), r.allow_new_privileges) == (
        "profile", {"defaultAction": "SCMP_ACT_ALLOW"}, True)
    assert [(u.name, u.soft, u.hard) for u in r.ulimits] == [("nofile", 512, 1024)]
    defaults = request("busybox")
    assert (defaults.seccomp, defaults.allow_new_privileges, defaults.privileged) == ("default", False, False)
    assert request("--privileged", "--security-opt", "seccomp=unconfined", "busybox").seccomp == "unconfined"


@pytest.mark.parametrize("argv, message", [
    (["Busybox"], "the repository name must be lowercase"),
    (["--cap-add", "magic", "busybox"], "unknown capability 'magic'"),
    (["--ulimit", "files=1", "busybox"], "unknown name 'files'"),
    (["--security-opt", "label=disable", "busybox"], "unsupported --security-opt"),
    (["--security-opt", "seccomp=/nonexistent.json", "busybox"], "cannot read seccomp profile"),
])
def test_bad_options_fail_before_anything_is_sent(argv, message):
    with pytest.raises(InvalidArgument, match=message):
        request(*argv)


def parse_exit(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(list(argv))
    return exited.value.code


def test_dash_h_is_the_hostname_of_run_and_help_stays_double_dash():
    assert request("-h", "web1", "busybox").hostname == "web1"
    assert parse_exit("run", "--help") == 0


@pytest.mark.parametrize("argv", [
    ["run", "-h"],                                      # -h needs its host name
    ["run", "--bogus", "--name", "c1", "busybox"],
    ["run", "--nam", "c1", "busybox"],                  # no abbreviations
    ["ps", "--bogus"],
    ["network", "create", "--bogus", "x"],
    ["run", "--pids-limit", "4294967296", "busybox"],
    ["run", "--pids-limit", "-2", "busybox"],
    ["stop", "-t", "-5", "c1"],
])
def test_a_wrong_or_unknown_option_exits_125_as_docker(argv, capsys):
    assert parse_exit(*argv) == 125
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_pids_limit_minus_one_is_unlimited():
    assert request("--pids-limit", "-1", "busybox").pids_limit == 0
    assert request("--pids-limit", "4294967295", "busybox").pids_limit == 4294967295


def test_env_by_name_takes_the_callers_value_or_is_left_out():
    from cli.options import parse_env
    assert parse_env(["A=1", "B", "C", "D="], caller={"B": "from-caller"}) == {"A": "1", "B": "from-caller", "D": ""}


@pytest.mark.parametrize("message,status", [
    ("container 'x' failed to start: executable file `nope` not found in $PATH", 127),
    ("container 'x' failed to start: open /bin/sh: permission denied", 126),
    ("container 'x' failed to start: something else", 125),
    ("network 'nosuch' not found", 125),          # not a start: the run itself failed
])
def test_a_failed_run_exits_as_docker(message, status):
    from cli.commands.containers import run_failure_status
    assert run_failure_status(message) == status


def test_publish_all_takes_every_exposed_port_not_published():
    from controller.run_options import RunImage, RunOptions, canonical_port, with_image
    from proto.records import PortMapping
    assert canonical_port("53/udp") == "53/udp" and canonical_port("8080") == "8080/tcp"
    with pytest.raises(InvalidArgument, match="invalid --expose 'x/tcp'"):
        canonical_port("x/tcp")
    options = RunOptions(ports=(PortMapping("tcp", 8080, 80),), publish_all=True, expose=("53/udp", "80/tcp"))
    done = with_image(options, RunImage(exposed_ports=("80/tcp", "443/tcp")))
    assert done.image.exposed_ports == ("80/tcp", "443/tcp", "53/udp")
    assert done.ports == (PortMapping("tcp", 8080, 80), PortMapping("tcp", 0, 443), PortMapping("udp", 0, 53))
    assert with_image(RunOptions(expose=("53/udp",)), RunImage()).ports == ()      # exposed, not published


def test_generated_names_are_docker_shaped_and_free():
    from controller.generated_names import generated_name
    picks = iter(["brave", "otter", "brave", "otter", "calm", "otter"])
    assert generated_name({"brave_otter"}, choice=lambda _: next(picks)) == "calm_otter"
    name = generated_name(set())
    adjective, _, noun = name.partition("_")
    assert adjective.isalpha() and noun.isalpha()
