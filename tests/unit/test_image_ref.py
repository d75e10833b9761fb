"""proto.image_ref: Docker's reference syntax, its defaults and its refusals."""
from __future__ import annotations

import pytest

from proto import image_ref
from proto.errors import InvalidArgument

SHA = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, canonical, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
    ("team/app:v2", "docker.io/team/app:v2", "team/app:v2"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
    ("10.231.0.2:5000/busybox", "10.231.0.2:5000/busybox:latest",
     "10.231.0.2:5000/busybox:latest"),
    ("[fd00::2]:5000/x/y:1", "[fd00::2]:5000/x/y:1", "[fd00::2]:5000/x/y:1"),
    ("registry.lab/deep/path/name_x.y-z__w:T_1.0-rc", "registry.lab/deep/path/name_x.y-z__w:T_1.0-rc",
     "registry.lab/deep/path/name_x.y-z__w:T_1.0-rc"),
    (f"busybox@{SHA}", f"docker.io/library/busybox@{SHA}", f"busybox@{SHA}"),
    (f"busybox:1.36@{SHA}", f"docker.io/library/busybox:1.36@{SHA}", f"busybox:1.36@{SHA}"),
    # No '/' after it: a host:port is read as name:tag, as Docker reads it.
    ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
])
def test_references_are_normalised_as_docker_does(text, canonical, familiar):
    ref = image_ref.parse(text)
    assert str(ref) == canonical
    assert ref.familiar == familiar
    assert image_ref.parse(canonical) == ref  # the canonical form parses back to itself


def test_the_parts_and_what_a_registry_is_asked_for():
    ref = image_ref.parse("localhost:5000/a/b:tag")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("localhost:5000", "a/b", "tag", "")
    assert ref.name == "localhost:5000/a/b"
    assert ref.pull_source == "localhost:5000/a/b:tag"
    pinned = image_ref.parse(f"localhost:5000/a/b:tag@{SHA}")
    assert pinned.pull_source == f"localhost:5000/a/b@{SHA}"  # the digest wins over the tag
    assert image_ref.parse(f"a@{SHA}").tag == ""  # a digest alone gets no "latest"


@pytest.mark.parametrize("text, reason", [
    ("", "it is empty"),
    ("Busybox", "must be lowercase"),
    ("Team/app", "must be lowercase"),
    ("registry.lab/Team/app", "must be lowercase"),
    ("busybox:", "tag '' must be"),
    ("busybox:.hidden", "tag '.hidden' must be"),
    ("busybox:" + "t" * 129, "must be 1 to 128"),
    ("busybox@sha256:abc", "sha256 digest must be 64 lowercase hex digits"),
    ("busybox@sha256:" + "AB" * 32, "64 lowercase hex digits"),
    ("busybox@md5:" + "a" * 32, "digest algorithm 'md5' is not one of"),
    ("busybox@" + "a" * 64, "must be ALGORITHM:HEX"),
    ("localhost:0/a", "port '0' must be a number"),
    ("localhost:99999/a", "port '99999'"),
    ("localhost:http/a", "port 'http'"),
    ("-bad.lab/a", "registry host '-bad.lab'"),
    ("[fd00::2/a", "unclosed '['"),
    ("[zz]:5000/a", "not an IPv6 address"),
    ("a//b", "component '' must be"),
    ("a/-b", "component '-b'"),
    ("a/b_", "component 'b_'"),
    ("a b", "white space"),
    ("registry.lab/", "the repository name is empty"),
    ("x" * 250 + "/" + "y" * 10, "longer than 255"),
])
def test_bad_references_are_refused_naming_what_is_wrong(text, reason):
    with pytest.raises(InvalidArgument, match="invalid image reference") as caught:
        image_ref.parse(text)
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_non_string_is_refused():
    with pytest.raises(InvalidArgument, match="must be a string"):
        image_ref.parse(None)
