"""agent.runtime: containers as processes in their own namespaces.

The integration tests need root: each creates a network namespace named
vxr<random>-c1, a state root /run/vxmesh-test-<random>/ and a cgroup parent
vxt<random> (under each of /sys/fs/cgroup/{memory,cpu,pids} on cgroup v1),
and removes all of them (and every process left in them) afterwards, pass or fail.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent.runtime import procfs
from agent.runtime.containers import ContainerConfig, ContainerError, Runtime
from deploy.topology import netns_pids
from tests.helpers.polling import wait_until
from tests.helpers.runtime import (host_nspid, live_pids, log_of, make_config, needs_root, ns_inode, run_exec, wait_exited,
                                   wait_for_log)


# -- tests without root: input checking -------------------------------------------

def test_config_check_names_what_is_wrong(tmp_path):
    netns_file = tmp_path / "ns"
    netns_file.touch()
    good = ContainerConfig(id="a" * 64, name="c1", command=["true"], env={},
                           hostname="h", netns_path=str(netns_file))
    good.check()
    bad_cases = [
        (dict(id="xyz"), "invalid container id"),
        (dict(id="A" * 64), "invalid container id"),
        (dict(command=[]), "command"),
        (dict(hostname=""), "hostname"),
        (dict(hostname="h" * 65), "hostname"),
        (dict(env={"A=B": "c"}), "environment variable"),
        (dict(netns_path=str(tmp_path / "missing")), "does not exist"),
    ]
    for change, message in bad_cases:
        fields = {**good.__dict__, **change}
        with pytest.raises(ContainerError, match=message):
            ContainerConfig(**fields).check()


async def test_runtime_rejects_ids_that_could_escape_its_root(tmp_path):
    runtime = Runtime(tmp_path)
    with pytest.raises(ContainerError, match="invalid container id"):
        await runtime.state("../" + "a" * 61)
    with pytest.raises(ContainerError, match="invalid container id"):
        runtime.log_path("..")
    assert await runtime.state("b" * 64) is None
    assert await runtime.list() == []


def test_procfs_tells_a_reused_pid_apart():
    me = procfs.identify(os.getpid())
    assert me is not None and procfs.is_alive(me)
    assert not procfs.is_alive(procfs.ProcessIdentity(me.pid, me.start_time + 1))


# -- integration ----------------------------------------------------------------

@pytest.mark.integration
@needs_root
async def test_command_runs_in_fresh_namespaces_joined_to_the_named_netns(
        root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    hostname = f"box-{secrets.token_hex(3)}"
    config = make_config(netns, ["sh", "-c", textwrap.dedent("""\
        echo hello; echo err >&2; hostname; echo "pid=$$"
        grep NSpid /proc/$$/status; echo setup-done; sleep 30""")], hostname=hostname)
    started = await runtime.start(config)
    assert started.state == "running" and started.pid > 0

    log = await wait_for_log(runtime, config.id, "setup-done")
    lines = log.splitlines()
    for expected in ("hello", "err", hostname, "pid=2"):
        assert expected in lines, f"{expected!r} missing from log {log!r}"
    # The container's own /proc shows only its pid namespace: one level, PID 2.
    assert "NSpid:\t2" in lines

    st = await runtime.state(config.id)
    assert st.state == "running" and st.pid == started.pid
    pid1 = st.pid
    children = Path(f"/proc/{pid1}/task/{pid1}/children").read_text().split()
    assert len(children) == 1
    command_pid = int(children[0])
    assert host_nspid(pid1)[-1] == 1 and host_nspid(command_pid)[-1] == 2

    netns_inode = os.stat(f"/run/netns/{netns}").st_ino
    for pid in (pid1, command_pid):
        assert ns_inode(pid, "net") == netns_inode
        for kind in ("pid", "uts", "ipc", "mnt"):
            assert ns_inode(pid, kind) != ns_inode("self", kind), kind

    out, _, code = await run_exec(runtime, config.id, ["sh", "-c", "hostname; ls /proc"])
    assert code == 0
    words = out.decode().split()
    assert words[0] == hostname
    proc_pids = {int(w) for w in words[1:] if w.isdigit()}
    # init, sh, sleep and the exec's own processes; none of the host's.
    assert {1, 2} <= proc_pids and len(proc_pids) < 10, proc_pids


@pytest.mark.integration
@needs_root
async def test_env_reaches_command_and_exec(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["sh", "-c", 'echo "FOO=$FOO"; sleep 30'], env={"FOO": "bar"})
    await runtime.start(config)
    await wait_for_log(runtime, config.id, "FOO=bar\n")

    assert await run_exec(runtime, config.id, ["sh", "-c", "echo $FOO; exit 3"]) == (b"bar\n", b"", 3)
    assert await run_exec(runtime, config.id, ["sh", "-c", "echo $FOO; echo oops >&2"],
                          env={"FOO": "baz"}) == (b"baz\n", b"oops\n", 0)
    _, err, code = await run_exec(runtime, config.id, ["vxr-no-such-tool"])
    assert code == 127 and b"vxr-no-such-tool" in err

    await runtime.stop(config.id)
    with pytest.raises(ContainerError, match="not running"):
        await run_exec(runtime, config.id, ["true"])


@pytest.mark.integration
@needs_root
async def test_stop_forwards_sigterm_to_the_command(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["sleep", "1000"])
    await runtime.start(config)
    began = time.monotonic()
    st = await runtime.stop(config.id, timeout=10)
    assert time.monotonic() - began < 2
    assert (st.state, st.exit_code, st.pid) == ("exited", 128 + signal.SIGTERM, 0)
    assert st.finished_at >= st.started_at > 0
    assert live_pids(netns_pids(netns)) == []


@pytest.mark.integration
@needs_root
async def test_stop_kills_a_command_that_ignores_sigterm_after_the_timeout(
        root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["sh", "-c", 'trap "" TERM; echo ready; while true; do sleep 0.1; done'])
    await runtime.start(config)
    await wait_for_log(runtime, config.id, "ready")
    began = time.monotonic()
    st = await runtime.stop(config.id, timeout=1)
    took = time.monotonic() - began
    assert 1 <= took < 4
    assert (st.state, st.exit_code) == ("exited", 137)
    assert live_pids(netns_pids(netns)) == []
    # Recorded once: later reads keep the same finish time.
    assert (await Runtime(root, cgroup_parent).state(config.id)) == st


@pytest.mark.integration
@needs_root
async def test_kill_forwards_signals_to_the_command(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["sh", "-c", 'trap "echo got-usr1" USR1; echo ready; '
                                             'while true; do sleep 0.1; done'])
    await runtime.start(config)
    await wait_for_log(runtime, config.id, "ready")
    await runtime.kill(config.id, signal.SIGUSR1)
    await wait_for_log(runtime, config.id, "got-usr1")
    with pytest.raises(ContainerError, match="SIGSTOP"):
        await runtime.kill(config.id, signal.SIGSTOP)
    assert (await runtime.state(config.id)).state == "running"

    await runtime.kill(config.id, signal.SIGKILL)
    st = await wait_exited(runtime, config.id)
    assert st.exit_code == 137
    with pytest.raises(ContainerError, match="not running"):
        await runtime.kill(config.id, signal.SIGTERM)


@pytest.mark.integration
@needs_root
async def test_exit_code_is_recorded_and_a_restart_appends_to_the_log(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["sh", "-c", "echo run; exit 7"])
    first = await runtime.start(config)
    st = await wait_exited(runtime, config.id)
    assert (st.exit_code, st.pid) == (7, 0)
    assert st.started_at == first.started_at and st.finished_at >= st.started_at

    await runtime.start(config)
    again = await wait_exited(runtime, config.id)
    assert again.exit_code == 7 and again.started_at > st.started_at
    assert log_of(runtime, config.id) == "run\nrun\n"


@pytest.mark.integration
@needs_root
async def test_missing_command_fails_the_start_and_leaves_nothing_running(
        root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["vxr-nosuchcmd", "arg"])
    with pytest.raises(ContainerError, match="cannot run 'vxr-nosuchcmd': No such file or directory"):
        await runtime.start(config)
    assert live_pids(netns_pids(netns)) == []
    st = await runtime.state(config.id)
    assert (st.state, st.pid, st.exit_code) == ("created", 0, 127)
    assert "vxr-nosuchcmd" in st.error
    await runtime.remove(config.id)
    assert await runtime.state(config.id) is None


@pytest.mark.integration
@needs_root
async def test_start_errors_name_their_cause(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    # PATH lookup uses the container's environment, not the agent's.
    no_path = make_config(netns, ["sh", "-c", "true"], env={"PATH": "/vxr-nowhere"})
    with pytest.raises(ContainerError, match="cannot run 'sh': No such file or directory"):
        await runtime.start(no_path)
    not_a_netns = root / "plain-file"
    not_a_netns.touch()
    bad_netns = ContainerConfig(**{**make_config(netns, ["true"]).__dict__,
                                   "netns_path": str(not_a_netns)})
    with pytest.raises(ContainerError, match=f"cannot join network namespace {not_a_netns}"):
        await runtime.start(bad_netns)
    assert (await runtime.state(bad_netns.id)).state == "created"
    assert live_pids(netns_pids(netns)) == []


@pytest.mark.integration
@needs_root
async def test_start_of_a_running_container_is_a_noop_and_remove_needs_stop(
        root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["sleep", "1000"])
    first = await runtime.start(config)
    assert await runtime.start(config) == first
    with pytest.raises(ContainerError, match="running, stop it first"):
        await runtime.remove(config.id)
    await runtime.stop(config.id)
    await runtime.remove(config.id)
    assert not (root / config.id).exists()
    assert await runtime.list() == []
    await runtime.remove(config.id)  # already gone: nothing to do


@pytest.mark.integration
@needs_root
async def test_containers_outlive_the_agent_and_a_new_runtime_finds_them(
        root, netns, cgroup_parent):
    config = make_config(netns, ["sleep", "1000"], name="survivor")
    # A separate "agent" process starts the container and then dies by SIGKILL.
    agent_script = textwrap.dedent(f"""\
        import asyncio, sys
        from pathlib import Path
        from agent.runtime.containers import ContainerConfig, Runtime
        config = ContainerConfig.from_dict({config.to_dict()!r})
        st = asyncio.run(Runtime(Path({str(root)!r}), {cgroup_parent!r}).start(config))
        print(st.pid, flush=True)
        sys.stdin.read()
        """)
    fake_agent = subprocess.Popen([sys.executable, "-c", agent_script], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pid = int(fake_agent.stdout.readline())
    finally:
        os.killpg(fake_agent.pid, signal.SIGKILL)
        fake_agent.wait()
        fake_agent.stdin.close()
        fake_agent.stdout.close()

    runtime = Runtime(root, cgroup_parent)
    st = await runtime.state(config.id)
    assert (st.state, st.pid, st.name) == ("running", pid, "survivor")
    assert [c.id for c in await runtime.list()] == [config.id]
    stopped = await runtime.stop(config.id)
    assert (stopped.state, stopped.exit_code) == ("exited", 143)


@pytest.mark.integration
@needs_root
async def test_closing_an_exec_early_kills_its_command(root, netns, cgroup_parent):
    runtime = Runtime(root, cgroup_parent)
    config = make_config(netns, ["sleep", "1000"])
    await runtime.start(config)
    marker = f"vxr-exec-{secrets.token_hex(3)}"

    def exec_processes() -> list[int]:
        found = []
        for pid in live_pids(netns_pids(netns)):
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except FileNotFoundError:
                pass
        return found

    # The marker sits in the shell's own argv, so /proc shows which process is the exec's.
    output = runtime.exec(config.id, ["sh", "-c", f"echo started; sleep 1000; : {marker}"])
    assert await anext(output) == ("stdout", b"started\n")
    assert exec_processes(), "the exec'd shell should be running before the close"
    await asyncio.wait_for(output.aclose(), 5)
    await wait_until(lambda: not exec_processes(), what="the exec'd command to be killed")
    assert (await runtime.state(config.id)).state == "running"
