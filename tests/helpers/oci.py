"""Fixtures for agent/oci tests: images in a host store, and a "host" to run containers on.

`busybox_images` (once per session): busybox:latest and busybox:entry pushed
to a test registry, pulled into an image store under /run/vxmesh-images-<hex>,
the registry stopped again; the store is removed at the end of the session.

`oci_host` (per test): a network namespace vxo<hex>-c1 (lo up), a runtime
root /run/vxmesh-oci-<hex>, a cgroup parent vxo<hex>. Afterwards every
container left under the root is killed and removed (crun state, cgroups,
files), the namespace deleted.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.images.image import Image
from agent.images.store import ImageStore
from agent.oci.cgroups import HostCgroups
from agent.oci import processes
from agent.oci.crun import Crun
from agent.oci.model import ContainerConfig, ContainerState
from agent.oci.runtime import Runtime
from tests.helpers.registry import running_registry

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for containers")


@dataclass(frozen=True)
class BusyboxImages:
    plain: Image       # busybox:latest
    entry: Image       # busybox:entry (Entrypoint, User app, WorkingDir /srv/work)
    store_root: Path


@dataclass(frozen=True)
class OciHost:
    netns: str
    root: Path
    cgroup_parent: str

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    def runtime(self) -> Runtime:
        return Runtime(self.root, self.cgroup_parent)


@pytest.fixture(scope="session")
def busybox_images(busybox_layout) -> Iterator[BusyboxImages]:
    root = Path(f"/run/vxmesh-images-{secrets.token_hex(4)}")
    try:
        with running_registry() as registry:
            plain_ref = registry.push(busybox_layout, "latest", "test/busybox:latest")
            entry_ref = registry.push(busybox_layout, "entry", "test/busybox:entry")
            store = ImageStore(root / "images", registry.access())

            async def pull() -> tuple[Image, Image]:
                return await store.pull(plain_ref), await store.pull(entry_ref)
            plain, entry = asyncio.run(pull())
        yield BusyboxImages(plain, entry, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def oci_host() -> Iterator[OciHost]:
    tag = secrets.token_hex(3)
    host = OciHost(netns=f"vxo{tag}-c1", root=Path(f"/run/vxmesh-oci-{tag}"),
                   cgroup_parent=f"vxo{tag}")
    subprocess.run(["ip", "netns", "add", host.netns], check=True)
    try:
        subprocess.run(["ip", "-n", host.netns, "link", "set", "lo", "up"], check=True)
        host.root.mkdir(mode=0o700)
        yield host
    finally:
        try:
            clean_up(host)
        finally:
            subprocess.run(["ip", "netns", "delete", host.netns], check=False)


def clean_up(host: OciHost) -> None:
    """Kill and remove every container of the host, whatever state the test left them in."""
    crun = Crun(host.root / "crun")
    for container_id in crun.ids():
        subprocess.run(crun.argv("delete", "--force", container_id), capture_output=True)
    cgroups = HostCgroups.detect()
    for container_id in cgroups.container_ids(host.cgroup_parent):
        cgroups.remove(host.cgroup_parent, container_id)
    cgroups.remove_parent_if_empty(host.cgroup_parent)
    for pid in subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True,
                              text=True).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _monitors_alive(host.root):
        time.sleep(0.05)
    shutil.rmtree(host.root, ignore_errors=True)


def _monitors_alive(root: Path) -> bool:
    for pid_file in root.glob("containers/*/monitor/conmon.pid"):
        try:
            if processes.start_time(int(pid_file.read_text())) is not None:  # zombies are done
                return True
        except (ValueError, FileNotFoundError):
            pass
    return False


def make_config(host: OciHost, image: Image, command: list[str] | None = None, *,
                name: str = "c1", **options) -> ContainerConfig:
    return ContainerConfig(id=secrets.token_hex(32), name=name, image=image, hostname=name,
                           netns_path=host.netns_path,
                           command=tuple(command) if command is not None else None, **options)


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def log_of(runtime: Runtime, container_id: str) -> str:
    try:
        return runtime.log_path(container_id).read_text(errors="replace")
    except FileNotFoundError:
        return ""


async def wait_for_log(runtime: Runtime, container_id: str, text: str) -> str:
    await wait_until(lambda: text in log_of(runtime, container_id), what=f"{text!r} in the log")
    return log_of(runtime, container_id)


async def wait_exited(runtime: Runtime, container_id: str, timeout: float = 10.0) -> ContainerState:
    async def exited():
        state = await runtime.state(container_id)
        return state if state is not None and state.state == "exited" else None
    return await wait_until(exited, timeout, what="the container to exit")


async def run_exec(runtime: Runtime, container_id: str, command: list[str],
                   env: dict[str, str] | None = None) -> tuple[str, str, int]:
    out, err, code = b"", b"", None
    async for kind, data in runtime.exec(container_id, command, env):
        if kind == "stdout":
            out += data
        elif kind == "stderr":
            err += data
        else:
            code = data
    assert code is not None, "exec ended without an exit code"
    return out.decode(), err.decode(), code


async def run_to_exit(host: OciHost, image: Image, command: list[str], **options) -> tuple[
        ContainerState, str]:
    """Run a container to its end; return its final state and its log. The container is removed."""
    runtime = host.runtime()
    config = make_config(host, image, command, **options)
    await runtime.start(config)
    state = await wait_exited(runtime, config.id)
    log = log_of(runtime, config.id)
    await runtime.remove(config.id)
    return state, log
