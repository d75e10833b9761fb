"""The agent's side of images: a spec as the runtime's config, and the pulls a start waits for."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.container_config import container_config
from agent.convergers import container_images
from agent.convergers.container_images import ContainerImages
from agent.images.image import Image
from agent.images.registry import RegistryAccess
from agent.oci.model import Resources, Security
from proto.errors import ImageError, InvalidArgument, NotFound
from proto.image_config import ImageConfig
from proto.records import ContainerSpec, Mount, Ulimit

REF = "docker.io/library/busybox:latest@sha256:" + "2" * 64


def image(reference: str = REF) -> Image:
    return Image(reference=reference, id="sha256:" + "1" * 64, digest="sha256:" + "2" * 64,
                 config=ImageConfig(cmd=("sh",)), rootfs=Path("/nonexistent"), size=1)


def spec(**fields) -> ContainerSpec:
    return ContainerSpec(id="ab" * 32, name="web", host="h1", image="docker.io/library/busybox:latest",
                         image_digest="sha256:" + "2" * 64, **fields)


# ---- the spec as the runtime's ContainerConfig ------------------------------------------

def test_what_the_user_did_not_give_is_left_to_the_image():
    config = container_config(spec(), image(), "/run/netns/x")
    assert (config.entrypoint, config.command, config.working_dir, config.user) == (None, None, "", "")
    assert (config.hostname, config.netns_path, config.security) == ("web", "/run/netns/x", Security())
    assert spec().pinned_image == REF


def test_an_entrypoint_given_replaces_the_images_and_an_empty_one_clears_it():
    assert container_config(spec(entrypoint=["env"], entrypoint_set=True), image(), "").entrypoint == ("env",)
    assert container_config(spec(entrypoint_set=True), image(), "").entrypoint == ()
    assert container_config(spec(command=["ls", "-l"]), image(), "").command == ("ls", "-l")


def test_options_and_confinement_reach_the_runtime():
    config = container_config(spec(
        hostname="h", env={"A": "1"}, working_dir="/srv", user="app", read_only=True,
        mounts=[Mount("/data", "/d", True)], memory_bytes=64 << 20, cpus=0.5, pids_limit=9,
        cap_add=["CAP_NET_ADMIN"], cap_drop=["CAP_CHOWN"], privileged=False, seccomp="unconfined",
        allow_new_privileges=True, ulimits=[Ulimit("nofile", 1, 2)]), image(), "")
    assert (config.hostname, config.env, config.working_dir, config.user, config.read_only) == (
        "h", {"A": "1"}, "/srv", "app", True)
    assert config.mounts == (Mount("/data", "/d", True),) and config.ulimits == (Ulimit("nofile", 1, 2),)
    assert config.resources == Resources(64 << 20, 0.5, 9)
    assert config.security == Security(privileged=False, cap_add=("CAP_NET_ADMIN",), cap_drop=("CAP_CHOWN",),
                                       seccomp="unconfined", no_new_privileges=False)


# ---- pulls ------------------------------------------------------------------------

class FakeStore:
    """An ImageStore whose pulls end when the test says so."""

    def __init__(self, cluster: str = "10.0.0.2:5000"):
        self.registries = RegistryAccess(cluster=cluster)
        self.pulls: list[str] = []
        self.release = asyncio.Event()
        self.failure: Exception | None = None
        self.held: dict[str, Image] = {}
        self.removed: list[str] = []

    async def ensure(self, reference: str) -> Image:
        self.pulls.append(reference)
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        self.held[reference] = image(reference)
        return self.held[reference]

    async def list(self) -> list[Image]:
        return list(self.held.values())

    async def remove(self, reference: str) -> list[str]:
        if reference not in self.held:
            raise NotFound(reference)
        del self.held[reference]
        self.removed.append(reference)
        return []


def pulling(store: FakeStore) -> tuple[ContainerImages, list[int]]:
    woken = []
    return ContainerImages(store, "h1", lambda: woken.append(1)), woken


async def test_a_slow_pull_runs_on_while_the_loop_goes_on_and_wakes_it_when_done(monkeypatch):
    monkeypatch.setattr(container_images, "PULL_WAIT", 0.01)
    store = FakeStore()
    images, woken = pulling(store)
    assert await images.get(REF) is None           # still pulling: this pass starts nothing
    assert await images.get(REF) is None and store.pulls == [REF]   # one pull, however many passes
    store.release.set()
    await asyncio.sleep(0.01)
    assert woken == [1]
    assert (await images.get(REF)).reference == REF
    assert store.pulls == [REF]


async def test_an_image_at_hand_is_ready_in_the_same_pass():
    store = FakeStore()
    store.release.set()
    images, _ = pulling(store)
    assert (await images.get(REF)).reference == REF


async def test_a_failed_pull_is_the_error_once_and_the_next_start_pulls_again():
    store = FakeStore()
    store.release.set()
    store.failure = ImageError("cannot pull image busybox:latest: manifest unknown")
    images, _ = pulling(store)
    with pytest.raises(ImageError, match="manifest unknown"):
        await images.get(REF)
    store.failure = InvalidArgument("a reference this host cannot use")
    with pytest.raises(ImageError, match="cannot use"):            # any user error reads as an image error
        await images.get(REF)
    assert store.pulls == [REF, REF]


async def test_a_host_without_a_registry_says_so():
    images, _ = pulling(FakeStore(cluster=""))
    with pytest.raises(ImageError, match="host h1 has no image registry"):
        await images.get(REF)


async def test_images_no_container_uses_are_dropped_and_pulls_in_flight_kept(monkeypatch):
    monkeypatch.setattr(container_images, "PULL_WAIT", 0.01)
    store = FakeStore()
    other = "docker.io/library/busybox:old@sha256:" + "3" * 64
    store.held = {REF: image(REF), other: image(other)}
    images, _ = pulling(store)
    await images.drop_unused([REF])
    assert store.removed == [other] and set(store.held) == {REF}
    pending = "docker.io/team/app:1@sha256:" + "4" * 64
    assert await images.get(pending) is None
    store.held[pending] = image(pending)
    await images.drop_unused([])                   # a pull still running keeps its image
    assert set(store.held) == {pending}
    store.release.set()
