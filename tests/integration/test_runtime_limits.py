"""agent.runtime: cgroups and limits, --network host / container:NAME, wait_exit.

The cgroup file writes are checked against fake trees in tmp_path (no root
needed); the rest runs real containers with the fixtures of test_runtime
(netns, state root and cgroup parent, all removed afterwards, pass or fail).
"""
from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from agent.runtime.cgroups import CgroupError, Cgroups, join
from agent.runtime.containers import ContainerError, Resources, Runtime
from tests.helpers.runtime import log_of, make_config, needs_root, ns_inode, run_exec, wait_exited, wait_for_log

MiB = 1024 * 1024


def limited(config, **resources):
    return dataclasses.replace(config, resources=Resources(**resources))


# -- without root ----------------------------------------------------------------

def test_resources_are_checked():
    good = dataclasses.replace(make_config("unused", ["true"]), netns_path="")
    limited(good, memory_bytes=6 * MiB, cpus=0.01, pids_limit=1).check()
    for resources, message in [
        (dict(memory_bytes=-1), "memory limit -1 must be an int >= 0"),
        (dict(memory_bytes=5 * MiB), "memory limit 5242880 bytes is below the minimum"),
        (dict(cpus=-0.5), "cpus -0.5 must be a number >= 0"),
        (dict(cpus=0.001), "cpus 0.001 must be between 0.01 and"),
        (dict(cpus=10_000.0), "cpus 10000.0 must be between"),
        (dict(pids_limit=-3), "pids limit -3"),
    ]:
        with pytest.raises(ContainerError, match=f"container 'c1': {message}"):
            limited(good, **resources).check()


def test_cgroup_version_is_detected_from_the_filesystem(tmp_path):
    assert Cgroups.detect("p", fs_root=tmp_path).version == 1
    if Path("/sys/fs/cgroup/unified/cgroup.controllers").exists():
        assert Cgroups.detect("p", fs_root=Path("/sys/fs/cgroup/unified")).version == 2
    for bad in ("", "/abs", "a/../b", "a//b"):
        with pytest.raises(CgroupError, match="relative path"):
            Cgroups(bad, 2, tmp_path)


def test_v2_limits_are_written_to_a_fake_tree(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    cgroups = Cgroups("vxmesh-h1", 2, tmp_path)
    limited_id, free_id = "a" * 64, "b" * 64
    # A kernel with swap accounting has memory.swap.max; pretend this one does.
    (tmp_path / "vxmesh-h1" / limited_id).mkdir(parents=True)
    (tmp_path / "vxmesh-h1" / limited_id / "memory.swap.max").write_text("max\n")

    cgroups.create(limited_id, Resources(memory_bytes=64 * MiB, cpus=1.5, pids_limit=20))
    cgroups.create(free_id, Resources())

    def read(*parts: str) -> str:
        return tmp_path.joinpath(*parts).read_text()
    for level in ("", "vxmesh-h1"):
        assert read(level, "cgroup.subtree_control") == "+memory +cpu +pids"
    group = ("vxmesh-h1", limited_id)
    assert read(*group, "memory.max") == str(64 * MiB)
    assert read(*group, "memory.swap.max") == "0"
    assert read(*group, "cpu.max") == "150000 100000"
    assert read(*group, "pids.max") == "20"
    free = ("vxmesh-h1", free_id)
    assert [read(*free, f) for f in ("memory.max", "cpu.max", "pids.max")] == \
        ["max", "max 100000", "max"]
    assert not tmp_path.joinpath(*free, "memory.swap.max").exists()
    assert cgroups.procs_files(free_id) == [tmp_path / "vxmesh-h1" / free_id / "cgroup.procs"]

    (tmp_path / "cgroup.controllers").write_text("cpu pids\n")
    with pytest.raises(CgroupError, match="lacks the memory controller"):
        Cgroups("other", 2, tmp_path).create("c" * 64, Resources())


def test_v1_limits_are_written_to_a_fake_tree(tmp_path):
    cgroups = Cgroups("p", 1, tmp_path)
    cid = "d" * 64
    with pytest.raises(CgroupError, match=f"no cgroup v1 hierarchy for the memory controller "
                                          f"at {tmp_path}/memory"):
        cgroups.create(cid, Resources())
    for controller in ("cpu", "pids"):
        (tmp_path / controller).mkdir()
    memory = tmp_path / "memory" / "p" / cid
    memory.mkdir(parents=True)
    (memory / "memory.memsw.limit_in_bytes").write_text("")
    cgroups.create(cid, Resources(memory_bytes=32 * MiB, cpus=0.25, pids_limit=7))
    assert (memory / "memory.limit_in_bytes").read_text() == str(32 * MiB)
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == str(32 * MiB)
    cpu = tmp_path / "cpu" / "p" / cid
    assert (cpu / "cpu.cfs_quota_us").read_text() == "25000"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "pids" / "p" / cid / "pids.max").read_text() == "7"


async def test_a_cgroup_that_cannot_be_set_up_fails_the_start_clearly(tmp_path):
    runtime = Runtime(tmp_path / "state", "vxt-unused")
    not_a_dir = tmp_path / "not-a-cgroupfs"
    not_a_dir.write_text("")
    runtime.cgroups = Cgroups("p", 1, not_a_dir)
    config = dataclasses.replace(make_config("unused", ["true"]), netns_path="")
    with pytest.raises(ContainerError, match="container 'c1': cannot set up its cgroup: "
                                             "no cgroup v1 hierarchy for the memory controller"):
        await runtime.start(config)
    st = await runtime.state(config.id)
    assert st.state == "created" and "cannot set up its cgroup" in st.error


# -- integration -------------------------------------------------------------------

def cgroup_file(runtime: Runtime, cid: str, name: str) -> str:
    controller = name.split(".")[0]
    if runtime.cgroups.version == 1:
        return (runtime.cgroups.fs_root / controller / runtime.cgroups.parent / cid / name) \
            .read_text().strip()
    return (runtime.cgroups.fs_root / runtime.cgroups.parent / cid / name).read_text().strip()


@pytest.mark.integration
@needs_root
async def test_memory_limit_oom_kills_the_command(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    hog = "data = b'x' * (200 << 20); print('survived', len(data))"
    config = limited(make_config(netns, ["python3", "-c", hog]), memory_bytes=32 * MiB)
    await runtime.start(config)
    st = await asyncio.wait_for(wait_exited(runtime, config.id), 10)
    assert st.exit_code == 137 and "survived" not in log_of(runtime, config.id)
    if runtime.cgroups.version == 1:
        assert cgroup_file(runtime, config.id, "memory.limit_in_bytes") == str(32 * MiB)
        assert "oom_kill 1" in cgroup_file(runtime, config.id, "memory.oom_control")
    else:
        assert cgroup_file(runtime, config.id, "memory.max") == str(32 * MiB)


@pytest.mark.integration
@needs_root
async def test_pids_limit_stops_a_fork_loop(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    # Python rather than sh: a shell gives up entirely on its first failed fork.
    fork_loop = textwrap.dedent("""\
        import os, time
        forked, error = 0, None
        for _ in range(30):
            try:
                pid = os.fork()
            except OSError as e:
                error = e.strerror
                break
            if pid == 0:
                time.sleep(1000)
                os._exit(0)
            forked += 1
        print(f"forked={forked} error={error}", flush=True)
        time.sleep(1000)
        """)
    config = limited(make_config(netns, ["python3", "-c", fork_loop]), pids_limit=10)
    await runtime.start(config)
    log = await wait_for_log(runtime, config.id, "forked=")
    # 10 = init + the loop + 8 children, or 7 while the shim had not left yet.
    assert re.search(r"forked=[78] error=Resource temporarily unavailable", log), log
    assert len(runtime.cgroups.pids(config.id)) <= 10
    assert cgroup_file(runtime, config.id, "pids.max") == "10"
    st = await runtime.stop(config.id)
    assert st.exit_code == 143


@pytest.mark.integration
@needs_root
async def test_cgroup_holds_every_process_and_goes_away_with_remove(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = limited(make_config(netns, ["sleep", "1000"]), cpus=0.5, memory_bytes=64 * MiB)
    st = await runtime.start(config)
    dirs = runtime.cgroups.dirs(config.id)
    assert all(d.is_dir() for d in dirs)
    if runtime.cgroups.version == 1:
        assert cgroup_file(runtime, config.id, "cpu.cfs_quota_us") == "50000"
        assert cgroup_file(runtime, config.id, "cpu.cfs_period_us") == "100000"
    else:
        assert cgroup_file(runtime, config.id, "cpu.max") == "50000 100000"
    assert st.pid in runtime.cgroups.pids(config.id)
    assert len(runtime.cgroups.pids(config.id)) == 2  # init and sleep; the shim has left

    # An exec'd command runs in the container's cgroup(s) too.
    out, _, code = await run_exec(runtime, config.id, ["cat", "/proc/self/cgroup"])
    assert code == 0
    expected_path = f"/{cgroup_parent}/{config.id}"
    in_cgroup = [line for line in out.decode().splitlines() if line.endswith(expected_path)]
    assert len(in_cgroup) == (3 if runtime.cgroups.version == 1 else 1), out

    # The kernel refuses a quota under 1 ms (config.check() would have caught it).
    with pytest.raises(CgroupError, match=r"cannot write '100\b.*cpu.*: Invalid argument"):
        runtime.cgroups.create(config.id, Resources(cpus=0.001))

    await runtime.stop(config.id)
    assert all(d.is_dir() for d in dirs)  # kept while the container exists
    await runtime.remove(config.id)
    assert not any(d.exists() for d in dirs)
    assert not any(p.exists() for p in runtime.cgroups.parent_dirs())


@pytest.mark.integration
@needs_root
async def test_orphan_cgroups_are_removed_and_their_processes_killed(
        root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    kept = make_config(netns, ["sleep", "1000"])
    await runtime.start(kept)
    stray_id = secrets.token_hex(32)
    runtime.cgroups.create(stray_id, Resources())
    straggler = subprocess.Popen(["sleep", "1000"])
    try:
        join(runtime.cgroups.procs_files(stray_id), straggler.pid)
        assert runtime.cgroups.pids(stray_id) == [straggler.pid]

        assert await runtime.remove_orphan_cgroups({kept.id}) == [stray_id]
        assert straggler.wait(5) == -signal.SIGKILL
        assert not any(d.exists() for d in runtime.cgroups.dirs(stray_id))
        assert runtime.cgroups.exists(kept.id)
        assert (await runtime.state(kept.id)).state == "running"
        assert await runtime.remove_orphan_cgroups({kept.id}) == []
    finally:
        straggler.kill()
        straggler.wait()


@pytest.mark.integration
@needs_root
async def test_host_network_mode_stays_in_the_runtimes_namespace(root, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = dataclasses.replace(make_config("unused", ["sleep", "1000"]), netns_path="")
    st = await runtime.start(config)
    assert ns_inode(st.pid, "net") == ns_inode("self", "net")
    for kind in ("pid", "mnt", "uts", "ipc"):
        assert ns_inode(st.pid, kind) != ns_inode("self", kind), kind
    await runtime.stop(config.id)


@pytest.mark.integration
@needs_root
async def test_a_container_can_join_another_containers_netns(root, netns, cgroup_parent):
    # The fixture's namespace is a topology node: its lo is up already.
    runtime = Runtime(root, cgroup_parent)
    port = 20000 + secrets.randbelow(20000)
    server = make_config(netns, ["python3", "-c", textwrap.dedent(f"""\
        import socket
        s = socket.create_server(("127.0.0.1", {port}))
        print("listening", flush=True)
        conn, _ = s.accept()
        print("got", conn.recv(100).decode(), flush=True)
        """)], name="server")
    await runtime.start(server)
    await wait_for_log(runtime, server.id, "listening")
    client = make_config(netns, ["sh", "-c", "python3 -c \"import socket; socket.create_connection("
                                             f"('127.0.0.1', {port})).sendall(b'hi-from-client')\""
                                             " && echo sent; exec sleep 1000"], name="client")
    client_st = await runtime.start(client)
    await wait_for_log(runtime, client.id, "sent")
    await wait_for_log(runtime, server.id, "got hi-from-client")
    server_st = await wait_exited(runtime, server.id)
    assert server_st.exit_code == 0
    assert ns_inode(client_st.pid, "net") == Path(f"/run/netns/{netns}").stat().st_ino
    await runtime.stop(client.id)


@pytest.mark.integration
@needs_root
async def test_wait_exit_returns_when_pid1_exits_and_can_be_cancelled(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["sleep", "1000"])
    await runtime.start(config)
    cancelled = asyncio.create_task(runtime.wait_exit(config.id))
    waiter = asyncio.create_task(runtime.wait_exit(config.id))
    await asyncio.sleep(0.2)
    assert not waiter.done() and not cancelled.done()
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    await runtime.kill(config.id, signal.SIGKILL)
    await asyncio.wait_for(waiter, 5)
    assert (await runtime.state(config.id)).state == "exited"
    await asyncio.wait_for(runtime.wait_exit(config.id), 1)  # not running: at once
