"""The controller's images: archive names, and the registry operations against a fake registry."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from controller.images import archives, cluster_images
from controller.images.cluster_images import ClusterImages
from controller.images.registry_api import DOCKER_MANIFEST, Manifest, RegistryError, RegistryUnreachable
from controller.run_options import RunImage
from proto.errors import FailedPrecondition, ImageError, InvalidArgument, NotFound, Unavailable

CLUSTER = "10.0.0.2:5000"
BUSYBOX_REPO = "vxmesh/docker.io/library/busybox"


def tarball(path: Path, files: dict[str, object]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, content in files.items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# ---- archives ------------------------------------------------------------------------

def test_a_docker_save_tarball_names_each_image_by_its_tags(tmp_path):
    path = tarball(tmp_path / "d.tar", {"manifest.json": [
        {"Config": "c.json", "RepoTags": ["busybox:latest", "team/app:1"], "Layers": []},
        {"Config": "d.json", "RepoTags": ["quay.io/x/y:2"], "Layers": []}]})
    found = archives.images_in(path, "d.tar")
    assert [(i.source, [str(r) for r in i.references]) for i in found] == [
        (f"docker-archive:{path}:@0", ["docker.io/library/busybox:latest", "docker.io/team/app:1"]),
        (f"docker-archive:{path}:@1", ["quay.io/x/y:2"])]


def test_an_oci_archive_names_its_images_by_their_annotations(tmp_path):
    path = tarball(tmp_path / "o.tar", {"oci-layout": {}, "./index.json": {"manifests": [
        {"annotations": {"org.opencontainers.image.ref.name": "docker.io/library/busybox:oci"}},
        {"annotations": {"org.opencontainers.image.ref.name": "v2", "io.containerd.image.name": "team/app:2"}}]}})
    found = archives.images_in(path)
    assert [(i.source, [r.familiar for r in i.references]) for i in found] == [
        (f"oci-archive:{path}:docker.io/library/busybox:oci", ["busybox:oci"]),
        (f"oci-archive:{path}:v2", ["team/app:2"])]


@pytest.mark.parametrize("files, message", [
    ({"manifest.json": [{"Config": "c", "RepoTags": None}]}, "image 0 of x.tar has no name"),
    ({"manifest.json": []}, "lists no image"),
    ({"index.json": {"manifests": [{"annotations": {"org.opencontainers.image.ref.name": "latest"}}]}},
     "image 0 of OCI archive x.tar has no name"),
    ({"manifest.json": [{"RepoTags": ["Bad:1"]}]}, "x.tar: invalid image reference 'Bad:1'"),
    ({"other": {}}, "neither a `docker save` tarball"),
])
def test_an_archive_without_usable_names_is_refused_naming_it(tmp_path, files, message):
    with pytest.raises(ImageError, match=message):
        archives.images_in(tarball(tmp_path / "x.tar", files), "x.tar")
    (tmp_path / "junk").write_bytes(b"not a tar")
    with pytest.raises(ImageError, match="cannot read image archive junk"):
        archives.images_in(tmp_path / "junk", "junk")


# ---- the registry operations ----------------------------------------------------------

def config_blob(cmd: str, ports: tuple[str, ...] = ()) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                       "config": {"Cmd": [cmd], "ExposedPorts": {p: {} for p in ports}}}).encode()


class FakeRegistry:
    """The registry API calls ClusterImages makes, over dicts."""

    def __init__(self):
        self.stored: dict[str, dict[str, Manifest]] = {}
        self.blobs: dict[str, bytes] = {}
        self.reachable = True
        self.config_reads: list[str] = []

    def add(self, repository: str, tag: str, cmd: str, ports: tuple[str, ...] = ()) -> Manifest:
        blob = config_blob(cmd, ports)
        config = "sha256:" + hashlib.sha256(blob).hexdigest()
        self.blobs[config] = blob
        body = json.dumps({"config": {"digest": config}, "layers": [{"size": 100}], "tag": tag}).encode()
        manifest = Manifest("sha256:" + hashlib.sha256(body).hexdigest(), DOCKER_MANIFEST, body, config, 100)
        self.stored.setdefault(repository, {})[tag] = manifest
        return manifest

    async def manifest(self, repository, reference):
        if not self.reachable:
            raise RegistryUnreachable(f"cannot reach the image registry {CLUSTER}: connection refused")
        for tag, manifest in self.stored.get(repository, {}).items():
            if reference in (tag, manifest.digest):
                return manifest
        return None

    async def config(self, repository, manifest):
        self.config_reads.append(manifest.config_digest)
        return json.loads(self.blobs[manifest.config_digest])

    async def repositories(self):
        return sorted(self.stored) + ["outside/thing"]

    async def tags(self, repository):
        return sorted(self.stored.get(repository, {}))

    async def delete_manifest(self, repository, digest):
        tags = self.stored[repository]
        for tag in [t for t, m in tags.items() if m.digest == digest]:
            del tags[tag]        # as distribution does: every tag of the manifest goes

    async def put_manifest(self, repository, tag, manifest):
        self.stored[repository][tag] = manifest


class FakeSkopeo:
    def __init__(self):
        self.copies = []

    async def copy(self, source, destination, what, source_ref=None):
        self.copies.append((source, str(destination)))


def cluster() -> tuple[ClusterImages, FakeRegistry, FakeSkopeo]:
    registry, skopeo = FakeRegistry(), FakeSkopeo()
    return ClusterImages(CLUSTER, registry, skopeo), registry, skopeo


async def test_run_resolves_an_image_to_its_digest_id_and_ports():
    images, registry, _ = cluster()
    manifest = registry.add(BUSYBOX_REPO, "latest", "sh", ("80/tcp",))
    assert await images.resolve("busybox") == RunImage(
        "docker.io/library/busybox:latest", manifest.digest, manifest.config_digest, ("80/tcp",))
    with pytest.raises(ImageError, match="cannot run image busybox:nope: it is not in the cluster's registry "
                                         f"{CLUSTER}"):
        await images.resolve("busybox:nope")
    registry.reachable = False
    with pytest.raises(Unavailable, match="cannot reach the image registry"):
        await images.resolve("busybox")


async def test_run_reads_an_images_configuration_once_and_its_manifest_every_time():
    images, registry, _ = cluster()
    first = registry.add(BUSYBOX_REPO, "latest", "sh", ("80/tcp",))
    for _ in range(3):
        assert (await images.resolve("busybox")).id == first.config_digest
    assert registry.config_reads == [first.config_digest]
    # The tag moved: the manifest is read again, and the new configuration with it.
    moved = registry.add(BUSYBOX_REPO, "latest", "httpd", ("8080/tcp",))
    resolved = await images.resolve("busybox")
    assert (resolved.digest, resolved.id, resolved.exposed_ports) == (moved.digest, moved.config_digest,
                                                                      ("8080/tcp",))
    assert registry.config_reads == [first.config_digest, moved.config_digest]
    # Bounded: the oldest configuration read goes first.
    for n in range(cluster_images.CONFIGS_KEPT):
        registry.add(BUSYBOX_REPO, f"t{n}", f"cmd{n}")
        await images.resolve(f"busybox:t{n}")
    await images.resolve("busybox:latest")
    assert registry.config_reads[-1] == moved.config_digest
    await images.resolve(f"busybox:t{cluster_images.CONFIGS_KEPT - 1}")
    assert registry.config_reads[-1] == moved.config_digest   # still kept: no read


async def test_list_shows_vxmeshs_images_only_and_inspect_finds_them_by_id():
    images, registry, _ = cluster()
    first = registry.add(BUSYBOX_REPO, "latest", "sh")
    registry.add("vxmesh/docker.io/team/app", "1", "app")
    assert [i.reference.familiar for i in await images.list()] == ["busybox:latest", "team/app:1"]
    [found] = await images.inspect(first.config_digest.removeprefix("sha256:")[:8])
    assert found.reference.familiar == "busybox:latest" and found.config.cmd == ("sh",)
    with pytest.raises(NotFound, match="no such image: ghost"):
        await images.inspect("ghost")


async def test_rm_untags_keeps_sibling_tags_and_deletes_what_no_name_is_left_for():
    images, registry, _ = cluster()
    manifest = registry.add(BUSYBOX_REPO, "latest", "sh")
    registry.stored[BUSYBOX_REPO]["stable"] = manifest          # the same manifest, a second tag
    with pytest.raises(FailedPrecondition, match="containers 'a', 'b' use it"):
        await images.remove("busybox", {"docker.io/library/busybox:latest": ["b", "a"]})
    assert await images.remove("busybox", {}) == ["Untagged: busybox:latest"]
    assert set(registry.stored[BUSYBOX_REPO]) == {"stable"}    # written back after the delete
    assert await images.remove("busybox:stable", {}) == [
        "Untagged: busybox:stable", f"Deleted: {manifest.config_digest}"]


async def test_load_pull_and_push_copy_to_and_from_the_cluster_place(tmp_path):
    images, registry, skopeo = cluster()
    path = tarball(tmp_path / "d.tar", {"manifest.json": [{"RepoTags": ["busybox:1"]}]})
    assert await images.load(path, "d.tar") == ["Loaded image: busybox:1"]
    registry.add("vxmesh/quay.io/x/y", "2", "y")
    lines = await images.pull("quay.io/x/y:2")
    assert lines[-1] == "quay.io/x/y:2" and lines[0].startswith("Digest: sha256:")
    assert await images.push("quay.io/x/y:2") == ["The push refers to repository [quay.io/x/y]",
                                                  "Pushed quay.io/x/y:2"]
    assert skopeo.copies == [
        (f"docker-archive:{path}:@0", f"{CLUSTER}/vxmesh/docker.io/library/busybox:1"),
        ("docker://quay.io/x/y:2", f"{CLUSTER}/vxmesh/quay.io/x/y:2"),
        (f"docker://{CLUSTER}/vxmesh/quay.io/x/y:2", "quay.io/x/y:2")]
    with pytest.raises(InvalidArgument, match="give a tag"):
        await images.pull("busybox@sha256:" + "a" * 64)
    with pytest.raises(NotFound, match="no such image: team/none:1"):
        await images.push("team/none:1")


async def test_a_registry_answering_nonsense_is_an_image_error():
    images, registry, _ = cluster()

    async def broken(repository, reference):
        raise RegistryError("busybox:latest is a application/vnd.oci.image.index.v1+json")
    registry.manifest = broken
    with pytest.raises(ImageError, match="image busybox:latest: busybox:latest is a application"):
        await images.resolve("busybox")
