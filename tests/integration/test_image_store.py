"""agent.images.ImageStore against a real registry (Debian's docker-registry in a namespace)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agent.images.registry import RegistryAccess
from agent.images.store import ImageStore
from proto.errors import ImageError, NotFound
from tests.helpers.registry import needs_registry, running_registry

pytestmark = [pytest.mark.integration, needs_registry]


def blobs(store: ImageStore) -> set[str]:
    return {p.name for p in (store.layout / "blobs" / "sha256").iterdir()}


async def test_pull_list_inspect_and_run_from_the_store_without_the_registry(
        registry, busybox_layout, tmp_path):
    reference = registry.push(busybox_layout, "latest", "team/busybox:1.0")
    store = ImageStore(tmp_path / "images", registry.access())
    image = await store.pull(reference)
    assert image.reference == "127.0.0.1:5000/team/busybox:1.0"
    assert image.id.startswith("sha256:") and image.digest.startswith("sha256:")
    assert image.config.cmd == ("sh",) and image.config.exposed_ports == ("80/tcp",)
    assert image.config.labels == {"org.vxmesh.image": "busybox"}
    assert (image.rootfs / "bin" / "busybox").is_file()
    assert (image.rootfs / "bin" / "sh").is_symlink()
    assert (image.rootfs / "etc" / "passwd").read_text().startswith("root:x:0:0")
    assert image.rootfs.parent.name == "rootfs" and image.rootfs.name == image.id[7:]
    assert [i.reference for i in await store.list()] == [image.reference]
    assert await store.inspect(reference) == image
    assert await store.inspect(image.id[7:19]) == image
    assert await store.inspect(image.id) == image
    with pytest.raises(NotFound, match="no such image: 127.0.0.1:5000/team/other"):
        await store.inspect("127.0.0.1:5000/team/other")


async def test_ensure_pulls_only_what_is_missing(busybox_layout, tmp_path):
    with running_registry() as registry:
        reference = registry.push(busybox_layout, "latest", "busybox")
        store = ImageStore(tmp_path / "images", registry.access())
        pulled = await store.ensure(reference)
    assert await store.ensure(reference) == pulled  # the registry is gone: served locally
    assert pulled.reference == "127.0.0.1:5000/busybox:latest"
    with pytest.raises(ImageError) as missing:
        await store.ensure("127.0.0.1:5000/never-pulled")
    assert str(missing.value).startswith("cannot pull image 127.0.0.1:5000/never-pulled:latest: ")


async def test_a_missing_image_fails_with_one_line_naming_it(registry, tmp_path):
    store = ImageStore(tmp_path / "images", registry.access())
    with pytest.raises(ImageError) as missing:
        await store.pull(f"{registry.host}/nope/missing:1.0")
    message = str(missing.value)
    assert message.startswith(f"cannot pull image {registry.host}/nope/missing:1.0: ")
    assert "manifest unknown" in message and "\n" not in message
    with pytest.raises(ImageError) as unreachable:
        await store.pull("127.0.0.1:5999/nobody/listens")
    assert "connection refused" in str(unreachable.value) and "\n" not in str(unreachable.value)
    assert await store.list() == []


async def test_tls_with_the_ca_and_refusal_without_it(tls_registry, busybox_layout, tmp_path):
    reference = tls_registry.push(busybox_layout, "latest", "secure/busybox")
    image = await ImageStore(tmp_path / "good", tls_registry.access()).pull(reference)
    assert (image.rootfs / "bin" / "busybox").is_file()
    untrusting = ImageStore(tmp_path / "bad", RegistryAccess(netns=tls_registry.netns))
    with pytest.raises(ImageError, match="certificate signed by unknown authority"):
        await untrusting.pull(reference)


async def test_remove_untags_then_deletes_and_refuses_an_image_in_use(
        registry, busybox_layout, tmp_path):
    first = registry.push(busybox_layout, "latest", "a/busybox")
    second = registry.push(busybox_layout, "latest", "b/busybox")
    entry = registry.push(busybox_layout, "entry", "a/entry")
    store = ImageStore(tmp_path / "images", registry.access())
    one, two, other = await store.pull(first), await store.pull(second), await store.pull(entry)
    assert one.id == two.id != other.id and one.rootfs == two.rootfs
    before = blobs(store)
    assert await store.remove(first) == ["Untagged: 127.0.0.1:5000/a/busybox:latest"]
    assert one.rootfs.is_dir() and blobs(store) == before  # still tagged as b/busybox
    with pytest.raises(ImageError, match="container 'web' uses it"):
        await store.remove(second, in_use={two.id: "web"})
    assert await store.remove(second) == ["Untagged: 127.0.0.1:5000/b/busybox:latest",
                                          f"Deleted: {two.id}"]
    assert not one.rootfs.exists() and blobs(store) < before  # umoci gc took its blobs
    assert [i.reference for i in await store.list()] == [other.reference]
    with pytest.raises(NotFound):
        await store.remove(first)
    assert await store.remove(other.id[7:19]) == [f"Untagged: {registry.host}/a/entry:latest",
                                                  f"Deleted: {other.id}"]
    assert list((tmp_path / "images" / "rootfs").iterdir()) == []


async def test_a_moved_tag_leaves_a_dangling_rootfs_for_prune(registry, busybox_layout, tmp_path):
    reference = registry.push(busybox_layout, "latest", "moving")
    store = ImageStore(tmp_path / "images", registry.access())
    old = await store.pull(reference)
    registry.push(busybox_layout, "entry", "moving")
    new = await store.pull(reference)
    assert new.id != old.id and old.rootfs.is_dir()
    assert await store.prune(in_use={old.id: "still-running"}) == []
    assert await store.prune() == [f"Deleted: {old.id}"]
    assert not old.rootfs.exists() and new.rootfs.is_dir()


async def test_unpacking_applies_whiteouts(registry, busybox_layout, tmp_path):
    layout = tmp_path / "layout"
    shutil.copytree(busybox_layout, layout)
    bundle = tmp_path / "bundle"
    # A second layer that deletes a file of the first, as any image build may.
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)], check=True,
                   capture_output=True)
    (bundle / "rootfs" / "var" / "www" / "index.html").unlink()
    subprocess.run(["umoci", "repack", "--image", f"{layout}:deleted", str(bundle)], check=True,
                   capture_output=True)
    reference = registry.push(layout, "deleted", "busybox:deleted")
    image = await ImageStore(tmp_path / "images", registry.access()).pull(reference)
    assert (image.rootfs / "var" / "www").is_dir()
    assert not (image.rootfs / "var" / "www" / "index.html").exists()
    assert not any(p.name.startswith(".wh.") for p in Path(image.rootfs).rglob("*"))
