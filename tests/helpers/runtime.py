"""Fixtures for agent/runtime tests: a network namespace, a state root, a cgroup parent.

Each is named with a random tag (vxr<hex>-c1, a deploy/topology.py node;
/run/vxmesh-test-<hex>; vxt<hex>) and removed afterwards with every process
left in it, pass or fail.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
from pathlib import Path

import pytest

from agent.runtime import procfs
from agent.runtime.cgroups import Cgroups
from agent.runtime.containers import ContainerConfig, ContainerState, Runtime
from agent.runtime.statedir import StateDir
from deploy.topology import Topology
from tests.helpers.polling import wait_until

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")


def live_pids(pids: list[int]) -> list[int]:
    return [p for p in pids if (s := procfs.read_stat(p)) is not None and s.state not in "ZX"]


@pytest.fixture
def netns():
    with Topology.fresh("vxr") as topology:
        yield topology.node("c1").name


@pytest.fixture
def root():
    path = Path(f"/run/vxmesh-test-{secrets.token_hex(4)}")
    path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        try:
            # Any container PID 1 still alive: SIGKILL takes its namespace down with it.
            for entry in path.iterdir():
                if not entry.is_dir():
                    continue
                launched = StateDir(entry).read_launched()
                if launched and procfs.is_alive(
                        procfs.ProcessIdentity(launched.pid, launched.start_time)):
                    os.kill(launched.pid, signal.SIGKILL)
        finally:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cgroup_parent():
    parent = f"vxt{secrets.token_hex(4)}"
    try:
        yield parent
    finally:
        # Kills whatever is still in a container's cgroup, then removes them all.
        Cgroups.detect(parent).orphans(set())


def make_config(netns: str, command: list[str], env: dict[str, str] | None = None,
                name: str = "c1", hostname: str = "box1") -> ContainerConfig:
    return ContainerConfig(
        id=secrets.token_hex(32), name=name, command=command, env=env or {},
        hostname=hostname, netns_path=f"/run/netns/{netns}",
    )


def log_of(runtime: Runtime, cid: str) -> str:
    try:
        return runtime.log_path(cid).read_text()
    except FileNotFoundError:
        return ""


async def wait_for_log(runtime: Runtime, cid: str, text: str) -> str:
    await wait_until(lambda: text in log_of(runtime, cid), what=f"{text!r} in the log")
    return log_of(runtime, cid)


async def run_exec(runtime: Runtime, cid: str, command: list[str],
                   env: dict[str, str] | None = None) -> tuple[bytes, bytes, int]:
    out, err, code = b"", b"", None
    async for kind, data in runtime.exec(cid, command, env):
        if kind == "stdout":
            out += data
        elif kind == "stderr":
            err += data
        else:
            code = data
    assert code is not None, "exec ended without an exit code"
    return out, err, code


async def wait_exited(runtime: Runtime, cid: str) -> ContainerState:
    async def exited():
        st = await runtime.state(cid)
        return st if st is not None and st.state == "exited" else None
    return await wait_until(exited, what="container to exit")


def ns_inode(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def host_nspid(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(p) for p in line.split()[1:]]
    raise AssertionError(f"no NSpid line for {pid}")
