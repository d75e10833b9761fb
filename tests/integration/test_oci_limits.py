"""agent.oci.Runtime: cgroup limits, ulimits, --read-only and -v binds, applied by crun."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.oci.cgroups import HostCgroups
from agent.oci.model import Resources
from proto.records import Mount, Ulimit
from tests.helpers.oci import (
    log_of,
    make_config,
    needs_root,
    run_exec,
    run_to_exit,
    wait_exited,
)

pytestmark = [pytest.mark.integration, needs_root]

MiB = 1024 * 1024


def cgroup_file(host, container_id: str, controller: str, name: str) -> str:
    cgroups = HostCgroups.detect()
    if cgroups.mode == "unified":
        return (Path("/sys/fs/cgroup") / host.cgroup_parent / container_id / name).read_text().strip()
    return (Path("/sys/fs/cgroup") / controller / host.cgroup_parent / container_id / name) \
        .read_text().strip()


async def test_a_memory_limit_oom_kills_the_command_with_137(busybox_images, oci_host):
    runtime = oci_host.runtime()
    # dd holds one block of 96 MiB in memory: three times the limit.
    config = make_config(oci_host, busybox_images.plain, [
        "sh", "-c", "dd if=/dev/zero of=/dev/null bs=96M count=1 && echo survived"],
        resources=Resources(memory_bytes=32 * MiB))
    await runtime.start(config)
    state = await wait_exited(runtime, config.id)
    assert state.exit_code == 137 and state.oom_killed, log_of(runtime, config.id)
    assert "survived" not in log_of(runtime, config.id)
    unlimited = make_config(oci_host, busybox_images.plain, [
        "sh", "-c", "dd if=/dev/zero of=/dev/null bs=96M count=1 2>/dev/null && echo survived"],
        name="control")
    state, log = await run_to_exit(oci_host, busybox_images.plain, list(unlimited.command))
    assert (state.exit_code, log, state.oom_killed) == (0, "survived\n", False)


async def test_limits_are_written_to_the_containers_cgroup(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sleep", "1000"],
                         resources=Resources(memory_bytes=64 * MiB, cpus=0.5, pids_limit=50))
    state = await runtime.start(config)
    if HostCgroups.detect().mode == "unified":
        assert cgroup_file(oci_host, config.id, "", "memory.max") == str(64 * MiB)
        assert cgroup_file(oci_host, config.id, "", "cpu.max") == "50000 100000"
    else:
        assert cgroup_file(oci_host, config.id, "memory", "memory.limit_in_bytes") == str(64 * MiB)
        assert cgroup_file(oci_host, config.id, "cpu", "cpu.cfs_quota_us") == "50000"
        assert cgroup_file(oci_host, config.id, "cpu", "cpu.cfs_period_us") == "100000"
    assert cgroup_file(oci_host, config.id, "pids", "pids.max") == "50"
    procs = cgroup_file(oci_host, config.id, "pids", "cgroup.procs").split()
    assert str(state.pid) in procs
    out, _, code = await run_exec(runtime, config.id, ["cat", "/proc/self/cgroup"])
    assert code == 0 and f"/{oci_host.cgroup_parent}/{config.id}" in out  # execs join it too


FORK_LOOP = "i=0; while [ $i -lt 30 ]; do sleep 1000 & i=$((i+1)); done; echo all-forked"


async def test_a_pids_limit_stops_a_fork_loop(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sleep", "1000"],
                         resources=Resources(pids_limit=10))
    await runtime.start(config)
    out, err, code = await run_exec(runtime, config.id, ["sh", "-c", FORK_LOOP])
    assert code != 0 and "all-forked" not in out and "can't fork" in err, (out, err)
    # PID 1, the exec's shell and 8 children made 10; the shell has gone since.
    assert len(cgroup_file(oci_host, config.id, "pids", "cgroup.procs").split()) == 9
    assert (await runtime.stop(config.id, 0)).exit_code == 137
    control = make_config(oci_host, busybox_images.plain, ["sleep", "1000"], name="control")
    await runtime.start(control)
    out, err, code = await run_exec(runtime, control.id, ["sh", "-c", FORK_LOOP])
    assert (code, out) == (0, "all-forked\n")


async def test_ulimits_apply(busybox_images, oci_host):
    state, log = await run_to_exit(oci_host, busybox_images.plain, ["sh", "-c", "ulimit -Sn; ulimit -Hn"],
                                   ulimits=(Ulimit("nofile", 512, 1024),))
    assert log.split() == ["512", "1024"]


async def test_read_only_root_and_binds(busybox_images, oci_host, tmp_path):
    data = oci_host.root / "data"
    data.mkdir()
    (data / "in").write_text("from the host\n")
    script = ("touch /made 2>&1 || echo root-ro; cat /data/in; echo rw > /data/out && echo data-rw; "
              "echo x > /data-ro/x 2>&1 || echo data-ro; echo x > /tmp/x 2>&1 || echo tmp-ro")
    state, log = await run_to_exit(
        oci_host, busybox_images.plain, ["sh", "-c", script], read_only=True,
        mounts=(Mount(str(data), "/data"), Mount(str(data), "/data-ro", readonly=True)))
    assert "root-ro" in log and "from the host" in log and "data-rw" in log and "data-ro" in log
    assert (data / "out").read_text() == "rw\n" and not (data / "x").exists()
    state, log = await run_to_exit(oci_host, busybox_images.plain, ["sh", "-c", "touch /made && echo ok"])
    assert log == "ok\n"  # the control: without --read-only the root is writable
