"""proto.run_options: --ulimit and --security-opt as Docker reads them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from proto import run_options
from proto.errors import InvalidArgument
from proto.records import Ulimit
from proto.run_options import SecurityOptions


@pytest.mark.parametrize("text, expected", [
    ("nofile=1024:2048", Ulimit("nofile", 1024, 2048)),
    ("nofile=4096", Ulimit("nofile", 4096, 4096)),
    ("core=-1", Ulimit("core", -1, -1)),
    ("memlock=64:-1", Ulimit("memlock", 64, -1)),
])
def test_ulimits(text, expected):
    assert run_options.parse_ulimit(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("nofile", "use NAME=SOFT[:HARD]"),
    ("files=10", "unknown name 'files'"),
    ("nofile=ten", "must be integers"),
    ("nofile=10:5", "must not exceed the hard limit"),
    ("nofile=-1:5", "must not exceed the hard limit"),
    ("nofile=-2", "below -1"),
])
def test_bad_ulimits_say_why(text, reason):
    with pytest.raises(InvalidArgument, match=re.escape(reason)):
        run_options.parse_ulimit(text)


def test_security_options_default_to_dockers_confinement_with_no_new_privileges():
    assert run_options.parse_security_opts([]) == SecurityOptions("default", "", True)
    assert run_options.parse_security_opts(["seccomp=unconfined"]).seccomp == "unconfined"
    assert run_options.parse_security_opts(["seccomp:unconfined"]).seccomp == "unconfined"
    assert run_options.parse_security_opts(["no-new-privileges=false"]).no_new_privileges is False
    assert run_options.parse_security_opts(["no-new-privileges"]).no_new_privileges is True


def test_a_seccomp_profile_file_is_read_where_the_option_is_given(tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}')
    parsed = run_options.parse_security_opts([f"seccomp={profile}"])
    assert parsed.seccomp == "profile" and '"SCMP_ACT_ALLOW"' in parsed.seccomp_profile
    with pytest.raises(InvalidArgument, match="cannot read seccomp profile"):
        run_options.parse_security_opts([f"seccomp={tmp_path / 'missing.json'}"])
    profile.write_text("[1, 2]")
    with pytest.raises(InvalidArgument, match="must be a JSON object with a \"defaultAction\""):
        run_options.parse_security_opts([f"seccomp={profile}"], read_file=Path.read_text)
    profile.write_text("{not json")
    with pytest.raises(InvalidArgument, match="is not JSON"):
        run_options.parse_security_opts([f"seccomp={profile}"])


@pytest.mark.parametrize("option", ["apparmor=unconfined", "label=disable", "seccomp", "no-new-privileges=maybe"])
def test_unsupported_security_options_are_refused(option):
    with pytest.raises(InvalidArgument, match="security-opt"):
        run_options.parse_security_opts([option])
