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
