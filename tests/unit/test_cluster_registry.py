"""Where the cluster's registry keeps each reference (proto/cluster_registry.py), both ways."""
from __future__ import annotations

import pytest

from proto import cluster_registry, image_ref
from proto.errors import InvalidArgument

CLUSTER = "10.231.0.10:5000"


@pytest.mark.parametrize("typed, repository", [
    ("busybox", "vxmesh/docker.io/library/busybox"),
    ("team/app:1", "vxmesh/docker.io/team/app"),
    ("quay.io/org/tool:2", "vxmesh/quay.io/org/tool"),
    ("localhost:5000/a/b:c", "vxmesh/localhost_5000/a/b"),
    (f"{CLUSTER}/outside/bb:1", "vxmesh/10.231.0.10_5000/outside/bb"),
])
def test_each_reference_has_one_place_and_reads_back(typed, repository):
    ref = image_ref.parse(typed)
    location = cluster_registry.location(ref, CLUSTER)
    assert (location.registry, location.repository, location.tag) == (CLUSTER, repository, ref.tag)
    assert cluster_registry.reference(location.repository, location.tag) == ref


def test_a_digest_stays_with_the_reference():
    digest = "sha256:" + "ab" * 32
    location = cluster_registry.location(image_ref.parse(f"busybox:1@{digest}"), CLUSTER)
    assert (location.tag, location.digest) == ("1", digest)
    assert str(location) == f"{CLUSTER}/vxmesh/docker.io/library/busybox:1@{digest}"


@pytest.mark.parametrize("repository", [
    "outside/bb",                        # not under vxmesh/
    "vxmesh/docker.io",                  # no repository after the registry
    "vxmesh/docker.io/busybox",          # docker.io's official images are under library/: not written so
])
def test_repositories_that_are_not_vxmeshs_read_as_none(repository):
    assert cluster_registry.reference(repository, "1") is None


def test_what_cannot_be_kept_is_refused_naming_it():
    with pytest.raises(InvalidArgument, match="IPv6"):
        cluster_registry.location(image_ref.parse("[::1]:5000/a:1"), CLUSTER)
    long = image_ref.parse("quay.io/" + "/".join(["abcdefghij"] * 22) + ":1")
    with pytest.raises(InvalidArgument, match="longer than 255"):
        cluster_registry.location(long, CLUSTER)


@pytest.mark.parametrize("address, ok", [
    ("10.0.0.2:5000", True), ("registry.lab", True), ("localhost:5000", True),
    ("Registry.lab", False), ("registry", False), ("10.0.0.2:70000", False), ("", False), ("a b", False),
])
def test_a_registry_address_is_what_a_reference_would_name(address, ok):
    if ok:
        assert cluster_registry.check_registry(address) == address
    else:
        with pytest.raises(InvalidArgument, match="invalid registry"):
            cluster_registry.check_registry(address)
