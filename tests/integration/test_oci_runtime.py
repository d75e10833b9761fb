"""agent.oci.Runtime: real containers from a pulled busybox image, run by crun under conmon.

Each test gets a "host" (oci_host: a network namespace, a runtime root, a
cgroup parent) and the session's busybox images, pulled from a test
registry into a store; everything is removed afterwards, pass or fail.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent.oci.cgroups import HostCgroups
from agent.oci.model import ContainerError, Security
from agent.oci.runtime import Runtime
from tests.helpers.oci import (
    OciHost,
    log_of,
    make_config,
    needs_root,
    run_exec,
    run_to_exit,
    wait_exited,
    wait_for_log,
)

pytestmark = [pytest.mark.integration, needs_root]

REPO = Path(__file__).resolve().parents[2]


def host_mounts() -> str:
    return Path("/proc/self/mountinfo").read_text()


def leftovers(host: OciHost, container_id: str, *, last: bool = True) -> list[str]:
    """Everything of the container still on the host: files, crun state, cgroups, mounts.

    `last`: it was the host's last container, so the cgroup parent must be gone too.
    """
    found = []
    if (host.root / "containers" / container_id).exists():
        found.append("its directory")
    if (host.root / "crun" / container_id).exists():
        found.append("crun state")
    cgroups = HostCgroups.detect()
    found += [str(d) for d in cgroups.container_dirs(host.cgroup_parent, container_id)]
    if last:
        found += [str(h / host.cgroup_parent) for h in cgroups.hierarchies
                  if (h / host.cgroup_parent).exists()]
    found += [line for line in host_mounts().splitlines() if container_id in line]
    return found


async def test_the_container_sees_its_images_root_not_the_hosts(busybox_images, oci_host):
    state, log = await run_to_exit(oci_host, busybox_images.plain, [
        "sh", "-c", "ls /; cat /etc/passwd; cat /etc/hostname; hostname; ls /run"])
    assert state.exit_code == 0, log
    listing = log.split("root:x:0:0")[0].split()
    assert {"bin", "etc", "linuxrc", "proc", "sys", "tmp", "usr", "var"} <= set(listing)
    assert "work" not in listing and "vmlinuz" not in listing  # the host's root has them
    assert "app:x:1000:1000:app:/home/app:/bin/sh" in log
    assert log.count("c1\n") == 2  # /etc/hostname and hostname(1)


async def test_the_images_entrypoint_cmd_user_workdir_and_env_apply(busybox_images, oci_host):
    state, log = await run_to_exit(oci_host, busybox_images.entry, None)
    assert (state.exit_code, log) == (0, "entry: default-arg\n")
    script = "id; pwd; echo $GREETING $HOME $HOSTNAME; echo $PATH"
    state, log = await run_to_exit(oci_host, busybox_images.entry, ["-c", script],
                                   entrypoint=("sh",), name="web")
    assert state.exit_code == 0, log
    lines = log.splitlines()
    assert lines[0] == "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)"  # initgroups
    assert lines[1] == "/srv/work"  # missing from the image: created, as Docker does
    assert lines[2] == "hello /home/app web"
    assert lines[3].startswith("/usr/local/sbin")


async def test_run_options_override_the_image(busybox_images, oci_host):
    state, log = await run_to_exit(
        oci_host, busybox_images.entry, ["-c", "id -u; id -g; pwd; echo $GREETING $EXTRA"],
        entrypoint=("sh",), user="nobody:staff", working_dir="/tmp",
        env={"GREETING": "overridden", "EXTRA": "yes"})
    assert state.exit_code == 0, log
    assert log.splitlines() == ["65534", "50", "/tmp", "overridden yes"]
    state, log = await run_to_exit(oci_host, busybox_images.plain, ["id"], user="4242:4343")
    assert log.strip() == "uid=4242 gid=4343"  # no passwd entry: no supplementary groups


async def test_exit_codes_logs_and_a_restart_that_keeps_the_writable_layer(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, [
        "sh", "-c", "echo out; echo err >&2; cat /kept 2>/dev/null; echo run > /kept; exit 3"])
    await runtime.start(config)
    first = await wait_exited(runtime, config.id)
    assert first.exit_code == 3 and first.finished_at >= first.started_at > 0
    assert log_of(runtime, config.id) == "out\nerr\n"
    await runtime.start(config)  # `start` of a stopped container: same layer, log appended
    second = await wait_exited(runtime, config.id)
    assert second.exit_code == 3 and second.started_at > first.started_at
    assert log_of(runtime, config.id) == "out\nerr\nout\nerr\nrun\n"
    await runtime.remove(config.id)
    assert leftovers(oci_host, config.id) == []


async def test_stop_sends_sigterm_and_a_trapping_command_exits_cleanly(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, [
        "sh", "-c", "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done"])
    await runtime.start(config)
    await wait_for_log(runtime, config.id, "ready")
    began = time.monotonic()
    stopped = await runtime.stop(config.id, timeout=10)
    assert (stopped.state, stopped.exit_code) == ("exited", 0)
    assert time.monotonic() - began < 5 and "got-term" in log_of(runtime, config.id)
    assert (await runtime.stop(config.id)).state == "exited"  # stopping a stopped one: no-op


async def test_stop_kills_a_command_that_ignores_sigterm_after_the_timeout(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sleep", "1000"])  # PID 1: TERM ignored
    await runtime.start(config)
    began = time.monotonic()
    stopped = await runtime.stop(config.id, timeout=0.5)
    assert (stopped.state, stopped.exit_code) == ("exited", 137)
    assert 0.5 <= time.monotonic() - began < 5


async def test_kill_delivers_signals_and_sigkill_ends_it(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, [
        "sh", "-c", "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done"])
    await runtime.start(config)
    await wait_for_log(runtime, config.id, "ready")
    await runtime.kill(config.id, signal.SIGUSR1)
    await wait_for_log(runtime, config.id, "got-usr1")
    await runtime.kill(config.id, signal.SIGKILL)
    await asyncio.wait_for(runtime.wait_exit(config.id), 5)
    assert (await runtime.state(config.id)).exit_code == 137
    with pytest.raises(ContainerError, match="it is not running"):
        await runtime.kill(config.id, signal.SIGTERM)
    with pytest.raises(ContainerError, match="unknown signal 999"):
        await runtime.kill(config.id, 999)


async def test_exec_runs_inside_with_the_containers_user_env_and_confinement(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.entry, ["-c", "sleep 1000"], entrypoint=("sh",),
                         env={"FROM_RUN": "1"})
    await runtime.start(config)
    out, err, code = await run_exec(runtime, config.id, [
        "sh", "-c", "id -u; pwd; echo $FROM_RUN $FROM_EXEC $GREETING; grep CapEff /proc/self/status;"
                    " echo oops >&2; exit 7"], env={"FROM_EXEC": "2"})
    assert code == 7 and err == "oops\n"
    assert out.splitlines() == ["1000", "/srv/work", "1 2 hello", "CapEff:\t0000000000000000"]
    out, _, code = await run_exec(runtime, config.id, ["unshare", "-r", "true"])
    assert code != 0  # the container's seccomp profile applies to exec too
    with pytest.raises(ContainerError, match="no-such-binary"):
        await run_exec(runtime, config.id, ["no-such-binary"])
    await runtime.stop(config.id, 0)
    with pytest.raises(ContainerError, match="not running"):
        await run_exec(runtime, config.id, ["true"])


async def test_closing_an_exec_early_kills_its_command(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sleep", "1000"])
    await runtime.start(config)
    stream = runtime.exec(config.id, ["sh", "-c", "echo started; exec sleep 777"])
    kind, data = await stream.__anext__()
    assert (kind, data) == ("stdout", b"started\n")
    await stream.aclose()

    async def sleep_gone() -> bool:
        out, _, _ = await run_exec(runtime, config.id, ["ps", "-o", "args"])
        return "sleep 777" not in out
    deadline = time.monotonic() + 5
    while not await sleep_gone():
        assert time.monotonic() < deadline, "the exec'd command outlived its stream"
        await asyncio.sleep(0.1)
    assert not list((oci_host.root / "containers" / config.id / "exec").iterdir())


async def test_a_missing_command_fails_the_start_and_leaves_nothing_running(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["no-such-command", "x"])
    with pytest.raises(ContainerError, match="no-such-command.*not found"):
        await runtime.start(config)
    state = await runtime.state(config.id)
    assert (state.state, state.exit_code) == ("created", 127) and "not found" in state.error
    assert not (oci_host.root / "crun" / config.id).exists()
    await runtime.remove(config.id)
    assert leftovers(oci_host, config.id) == []


async def test_before_start_runs_with_the_container_created_and_its_command_not_yet_begun(busybox_images, oci_host):
    """What the agent builds meanwhile (the interfaces) is there when the command begins."""
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain,
                         ["sh", "-c", "ip link show vxoci-wired && echo found; sleep 1000"])
    seen = []

    async def wire() -> None:
        seen.append((await runtime.crun.state(config.id)).status)
        # A link in the test's own namespace, the one the container was created in.
        subprocess.run(["ip", "-n", oci_host.netns, "link", "add", "vxoci-wired", "type", "veth",
                        "peer", "name", "vxoci-peer"], check=True)

    state = await runtime.start(config, before_start=wire())
    assert seen == ["created"] and state.state == "running"
    await wait_for_log(runtime, config.id, "found")
    await runtime.stop(config.id, 0)
    await runtime.remove(config.id)
    assert leftovers(oci_host, config.id) == []


async def test_a_before_start_that_fails_leaves_no_container_created(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sleep", "1000"])

    async def wire() -> None:
        raise RuntimeError("no interfaces for you")

    with pytest.raises(RuntimeError, match="no interfaces for you"):
        await runtime.start(config, before_start=wire())
    assert not (oci_host.root / "crun" / config.id).exists()
    # The next start (the agent's next pass) runs it.
    assert (await runtime.start(config)).state == "running"
    await runtime.stop(config.id, 0)
    await runtime.remove(config.id)
    assert leftovers(oci_host, config.id) == []


async def test_state_reads_a_containers_files_in_one_thread_hop(busybox_images, oci_host, monkeypatch):
    """A pass asks every container's state twice: running, exited or created, one hop each."""
    runtime = oci_host.runtime()
    running = make_config(oci_host, busybox_images.plain, ["sleep", "1000"])
    done = make_config(oci_host, busybox_images.plain, ["true"], name="c2")
    failed = make_config(oci_host, busybox_images.plain, ["no-such-command"], name="c3")
    await runtime.start(running)
    await runtime.start(done)
    await wait_exited(runtime, done.id)
    with pytest.raises(ContainerError):
        await runtime.start(failed)
    hops = []
    real = asyncio.to_thread

    async def counted(function, *args, **kwargs):
        hops.append(function)
        return await real(function, *args, **kwargs)
    monkeypatch.setattr(asyncio, "to_thread", counted)
    for config, state in ((running, "running"), (done, "exited"), (failed, "created")):
        hops.clear()
        assert (await runtime.state(config.id)).state == state
        assert len(hops) == 1, (state, hops)
    monkeypatch.undo()
    await runtime.stop(running.id, 0)
    for config in (running, done, failed):
        await runtime.remove(config.id)


async def test_an_unknown_user_fails_the_start_naming_it(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["id"], user="ghost")
    with pytest.raises(ContainerError, match="unable to find user ghost"):
        await runtime.start(config)
    assert (await runtime.state(config.id)).state == "created"


async def test_start_of_a_running_container_is_a_noop_and_remove_needs_stop(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sleep", "1000"])
    first = await runtime.start(config)
    again = await runtime.start(config)
    assert again.pid == first.pid and again.state == "running"
    with pytest.raises(ContainerError, match="it is running, stop it first"):
        await runtime.remove(config.id)
    assert [s.name for s in await runtime.list()] == ["c1"]
    await runtime.stop(config.id, 0)
    await runtime.remove(config.id)
    assert await runtime.state(config.id) is None and await runtime.list() == []
    await runtime.remove(config.id)  # unknown ids are already gone


async def test_the_overlay_root_lives_only_in_the_containers_mount_namespace(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sh", "-c", "echo x > /made-here; sleep 1000"])
    state = await runtime.start(config)
    assert config.id not in host_mounts()
    container_mounts = Path(f"/proc/{state.pid}/mountinfo").read_text()
    assert " / " in container_mounts and "overlay" in container_mounts
    await wait_until_file(oci_host.root / "containers" / config.id / "upper" / "made-here")
    assert not (busybox_images.plain.rootfs / "made-here").exists()  # the image stays as it was
    await runtime.stop(config.id, 0)
    await runtime.remove(config.id)
    assert leftovers(oci_host, config.id) == []


async def wait_until_file(path: Path) -> None:
    deadline = time.monotonic() + 5
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)


async def test_network_namespaces_joined_by_path_or_the_hosts(busybox_images, oci_host):
    runtime = oci_host.runtime()
    joined = make_config(oci_host, busybox_images.plain, ["sleep", "1000"])
    state = await runtime.start(joined)
    assert os.stat(f"/proc/{state.pid}/ns/net").st_ino == os.stat(oci_host.netns_path).st_ino
    host_mode = dataclasses.replace(make_config(oci_host, busybox_images.plain, ["sleep", "1000"],
                                                name="c2"), netns_path="")
    state = await runtime.start(host_mode)
    assert os.stat(f"/proc/{state.pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    for kind in ("pid", "mnt", "uts", "ipc"):
        assert os.stat(f"/proc/{state.pid}/ns/{kind}").st_ino != os.stat(f"/proc/self/ns/{kind}").st_ino


async def test_wait_exit_returns_when_the_container_exits_and_can_be_cancelled(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sleep", "1000"])
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


STARTER = textwrap.dedent("""\
    import asyncio, os, sys
    from agent.images.image import Image
    from agent.oci.model import ContainerConfig
    from agent.oci.runtime import Runtime
    import json
    args = json.loads(sys.argv[1])
    async def main():
        runtime = Runtime(args["root"], args["parent"])
        config = ContainerConfig(id=args["id"], name="survivor", image=Image.from_dict(args["image"]),
                                 hostname="survivor", netns_path=args["netns"],
                                 command=("sh", "-c", "echo up; trap 'echo bye; exit 5' TERM; "
                                                      "while :; do sleep 0.1; done"))
        state = await runtime.start(config)
        print(state.pid, flush=True)
        os.kill(os.getpid(), 9)  # the agent dies without a word
    asyncio.run(main())
    """)


async def test_a_container_outlives_the_process_that_started_it(busybox_images, oci_host):
    import json
    import secrets
    container_id = secrets.token_hex(32)
    args = {"root": str(oci_host.root), "parent": oci_host.cgroup_parent, "id": container_id,
            "image": busybox_images.plain.to_dict(), "netns": oci_host.netns_path}
    starter = subprocess.run([sys.executable, "-c", STARTER, json.dumps(args)], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert starter.returncode == -signal.SIGKILL, starter.stderr
    pid = int(starter.stdout.split()[0])
    runtime = Runtime(oci_host.root, oci_host.cgroup_parent)  # a new agent
    state = await runtime.state(container_id)
    assert (state.state, state.pid, state.name) == ("running", pid, "survivor")
    await wait_for_log(runtime, container_id, "up")
    stopped = await runtime.stop(container_id, 5)
    assert stopped.exit_code == 5 and "bye" in log_of(runtime, container_id)
    await runtime.remove(container_id)
    assert leftovers(oci_host, container_id) == []


async def test_orphans_are_found_by_their_host_and_removed_running_or_not(busybox_images, oci_host):
    runtime = oci_host.runtime()
    kept = make_config(oci_host, busybox_images.plain, ["sleep", "1000"], name="kept")
    stray_running = make_config(oci_host, busybox_images.plain, ["sleep", "1000"], name="stray1")
    stray_exited = make_config(oci_host, busybox_images.plain, ["true"], name="stray2")
    for config in (kept, stray_running, stray_exited):
        await runtime.start(config)
    await wait_exited(runtime, stray_exited.id)
    stray_pid = (await runtime.state(stray_running.id)).pid
    after_restart = Runtime(oci_host.root, oci_host.cgroup_parent)
    removed = await after_restart.remove_orphans({kept.id})
    assert sorted(removed) == sorted([stray_running.id, stray_exited.id])
    assert not Path(f"/proc/{stray_pid}").exists() or "Z" in Path(f"/proc/{stray_pid}/stat").read_text()
    for config in (stray_running, stray_exited):
        assert leftovers(oci_host, config.id, last=False) == []
    assert (await after_restart.state(kept.id)).state == "running"
    assert await after_restart.remove_orphans({kept.id}) == []


async def test_a_started_container_has_dockers_default_confinement_on(busybox_images, oci_host):
    runtime = oci_host.runtime()
    config = make_config(oci_host, busybox_images.plain, ["sleep", "1000"])
    state = await runtime.start(config)
    status = Path(f"/proc/{state.pid}/status").read_text()
    assert "CapEff:\t00000000a80425fb" in status
    assert "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status
    privileged = dataclasses.replace(make_config(oci_host, busybox_images.plain, ["sleep", "1000"],
                                                 name="p"), security=Security(privileged=True))
    state = await runtime.start(privileged)
    status = Path(f"/proc/{state.pid}/status").read_text()
    assert "NoNewPrivs:\t0" in status and "Seccomp:\t0" in status
    own_bounding = next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                        if line.startswith("CapBnd:"))
    assert f"CapEff:\t{own_bounding}" in status  # all the agent holds
