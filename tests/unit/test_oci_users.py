"""agent.oci.users: -u resolved against the image's /etc/passwd and /etc/group, read safely."""
from __future__ import annotations

import os

import pytest

from agent.oci import users
from agent.oci.model import ContainerError
from agent.oci.users import User

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
app:x:1000:1000:app:/home/app:/bin/sh
svc:x:1001:1001::/srv:/bin/false
broken line
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
staff:x:50:app,svc
audio:x:29:app
app:x:1000:
svc:x:1001:
"""


@pytest.mark.parametrize("spec, expected", [
    ("", User(0, 0, (0,), "/root")),
    ("root", User(0, 0, (0,), "/root")),
    ("app", User(1000, 1000, (29, 50, 1000), "/home/app")),
    ("1000", User(1000, 1000, (29, 50, 1000), "/home/app")),
    ("4242", User(4242, 0, (), "/")),            # not in passwd: gid 0, home /, no groups
    ("app:staff", User(1000, 50, (29, 50), "/home/app")),
    ("app:7", User(1000, 7, (7, 29, 50), "/home/app")),
    ("4242:4343", User(4242, 4343, (), "/")),
    ("svc", User(1001, 1001, (50, 1001), "/srv")),
])
def test_users_resolve_as_docker_resolves_them(spec, expected):
    assert users.resolve(spec, PASSWD, GROUP) == expected


def test_unknown_names_fail_and_numbers_work_without_the_files():
    with pytest.raises(ContainerError, match="unable to find user ghost"):
        users.resolve("ghost", PASSWD, GROUP)
    with pytest.raises(ContainerError, match="unable to find group ghosts"):
        users.resolve("app:ghosts", PASSWD, GROUP)
    with pytest.raises(ContainerError, match="unable to find user app"):
        users.resolve("app", None, None)
    assert users.resolve("5:6", None, None) == User(5, 6, (), "/")
    with pytest.raises(ContainerError, match="out of range"):
        users.resolve("4294967295", None, None)


def test_files_are_read_from_the_top_layer_that_has_them(tmp_path):
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("from lower")
    upper.mkdir()
    assert users.read_layered([upper, lower], "/etc/passwd") == "from lower"
    (upper / "etc").mkdir()
    (upper / "etc" / "passwd").write_text("from upper")
    assert users.read_layered([upper, lower], "/etc/passwd") == "from upper"
    assert users.read_layered([upper, lower], "/etc/group") is None


def test_a_whiteout_hides_the_file_below(tmp_path):
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "group").write_text("deleted in the container")
    (upper / "etc").mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("making a whiteout (a 0/0 character device) needs root")
    os.mknod(upper / "etc" / "group", 0o600 | 0o020000, os.makedev(0, 0))
    assert users.read_layered([upper, lower], "/etc/group") is None


def test_symlinks_are_never_followed_out_of_the_image(tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("root:x:0:0:host:/:/bin/sh")
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").symlink_to(secret)
    with pytest.raises(ContainerError, match="passes through a symlink"):
        users.read_layered([lower], "/etc/passwd")
    other = tmp_path / "other"
    other.mkdir()
    (other / "etc").symlink_to(tmp_path)
    with pytest.raises(ContainerError, match="passes through a symlink"):
        users.read_layered([other], "/etc/passwd")
    (lower / "etc" / "group").mkdir()
    assert users.read_layered([lower], "/etc/group") is None  # a directory is no file
