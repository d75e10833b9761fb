"""agent.runtime with --rootfs and -v binds.

The rootfs is Debian's busybox-static (/bin/busybox) plus one symlink per
applet, built in the test's tmp_path. Integration tests need root and use the
netns / state root / cgroup parent fixtures of test_runtime (all removed
afterwards, pass or fail).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.runtime.containers import ContainerConfig, ContainerError, Mount, Runtime
from agent.runtime.filesystem import FilesystemError, mount_point, resolve_in_root
from deploy.topology import netns_pids
from tests.helpers.runtime import live_pids, log_of, make_config, needs_root, run_exec, wait_exited, wait_for_log

BUSYBOX = Path("/bin/busybox")
needs_busybox = pytest.mark.skipif(not BUSYBOX.exists(), reason="needs busybox-static")


@pytest.fixture
def rootfs(tmp_path) -> Path:
    path = tmp_path / "rootfs"
    (path / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            # Relative links: `busybox --install -s` would point at the host's path.
            (path / "bin" / applet).symlink_to("busybox")
    return path


def with_fs(config: ContainerConfig, **changes) -> ContainerConfig:
    return dataclasses.replace(config, **changes)


# -- without root ----------------------------------------------------------------

def test_config_check_validates_rootfs_and_mounts(tmp_path):
    good = make_config("unused", ["true"])
    good = with_fs(good, netns_path="")
    src = tmp_path / "src"
    src.mkdir()
    good = with_fs(good, rootfs=str(tmp_path), mounts=(Mount(str(src), "/data", True),))
    good.check()
    bad_cases = [
        (dict(rootfs="relative/dir"), r"container 'c1': rootfs relative/dir is not an absolute"),
        (dict(rootfs=str(tmp_path / "nope")), f"container 'c1': rootfs {tmp_path}/nope is not a "
                                              "directory"),
        (dict(mounts=(Mount("src", "/data"),)), "source is not an absolute path"),
        (dict(mounts=(Mount(str(tmp_path / "gone"), "/data"),)), "source .*/gone does not exist"),
        (dict(mounts=(Mount(str(src), "data"),)), "target is not an absolute path"),
        (dict(mounts=(Mount(str(src), "/a/../etc"),)), r"target must not contain '\.\.'"),
        (dict(mounts=(Mount(str(src), "/"),)), "cannot mount over the container's /"),
        (dict(mounts=(Mount(str(src), "/d"), Mount(str(src), "/d/"))), "two mounts on target /d"),
    ]
    for change, message in bad_cases:
        with pytest.raises(ContainerError, match=message):
            with_fs(good, **change).check()


def test_old_config_files_load_with_the_new_fields_defaulted():
    old = {"id": "a" * 64, "name": "c1", "command": ["true"], "env": {}, "hostname": "h",
           "netns_path": "/run/netns/x"}
    config = ContainerConfig.from_dict(old)
    assert (config.rootfs, config.mounts, config.resources.memory_bytes) == ("", (), 0)
    full = with_fs(config, rootfs="/srv/r", mounts=(Mount("/a", "/b", True),))
    assert ContainerConfig.from_dict(full.to_dict()) == full


def test_mount_points_resolve_symlinks_inside_the_rootfs(tmp_path):
    root = tmp_path / "r"
    outside = tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    (root / "abs").symlink_to(outside)               # absolute: restarts at root
    (root / "rel").symlink_to("../../../../outside")  # ".." stops at root
    (root / "loop").symlink_to("loop")
    r = str(root)
    assert resolve_in_root(r, "/abs/x") == f"{r}{outside}/x"
    assert resolve_in_root(r, "/rel/x") == f"{r}/outside/x"
    assert resolve_in_root(r, "/../../etc/./x/..") == f"{r}/etc"
    with pytest.raises(FilesystemError, match="too many symlinks"):
        resolve_in_root(r, "/loop/x")

    assert mount_point(r, "/abs/x", directory=True) == f"{r}{outside}/x"
    assert (root / str(outside).lstrip("/") / "x").is_dir()
    assert list(outside.iterdir()) == []  # nothing landed outside the rootfs
    assert mount_point(r, "/rel/f", directory=False) == f"{r}/outside/f"
    assert (root / "outside" / "f").is_file()
    with pytest.raises(FilesystemError, match="file is in the way"):
        mount_point(r, "/outside/f/sub", directory=True)
    with pytest.raises(FilesystemError, match="file is in the way"):
        mount_point(r, "/outside/f", directory=True)
    with pytest.raises(FilesystemError, match="exists but is not a file"):
        mount_point(r, "/etc", directory=False)


# -- integration -------------------------------------------------------------------

@pytest.mark.integration
@needs_root
@needs_busybox
async def test_rootfs_container_sees_only_its_rootfs_and_binds(
        root, netns, cgroup_parent, rootfs, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello from the host\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "kept.txt").write_text("read me\n")
    runtime = Runtime(root, cgroup_parent)
    script = """\
        echo "root: $(ls / | tr '\\n' ' ')"
        test -e /etc/debian_version || echo no-debian-version
        cat /data/hello.txt /ro/kept.txt
        echo written > /data/from-container && echo rw-ok
        echo x > /ro/x; echo "ro-exit=$?"
        echo discard > /dev/null && echo devnull-ok
        echo "pid1: $(tr '\\0' ' ' < /proc/1/cmdline)"
        echo setup-done; exec sleep 1000"""
    config = with_fs(make_config(netns, ["sh", "-c", script]), rootfs=str(rootfs),
                     mounts=(Mount(str(data), "/data"), Mount(str(ro), "/ro", readonly=True)))
    await runtime.start(config)
    log = await wait_for_log(runtime, config.id, "setup-done")
    lines = log.splitlines()

    assert "root: bin data dev proc ro sys " in lines, log
    for expected in ("no-debian-version", "hello from the host", "read me", "rw-ok",
                     "devnull-ok"):
        assert expected in lines, f"{expected!r} missing from {log!r}"
    assert "Read-only file system" in log
    assert "ro-exit=0" not in log and "ro-exit=" in log
    # PID 1 is the runtime's init (the forked shim), already inside the rootfs.
    assert "agent.runtime.shim" in next(line for line in lines if line.startswith("pid1:"))
    assert (data / "from-container").read_text() == "written\n"
    assert not (ro / "x").exists()

    # exec runs inside the rootfs too: busybox's ls, no host files, own /proc.
    out, err, code = await run_exec(runtime, config.id, ["sh", "-c", "ls /; ls /proc"])
    assert code == 0, err
    words = out.decode().split()
    assert words[:6] == ["bin", "data", "dev", "proc", "ro", "sys"]
    proc_pids = {int(w) for w in words[6:] if w.isdigit()}
    assert 1 in proc_pids and len(proc_pids) < 10, proc_pids
    out, err, code = await run_exec(runtime, config.id, ["cat", "/etc/debian_version"])
    assert code != 0 and b"No such file" in err
    _, err, code = await run_exec(runtime, config.id, ["python3", "-V"])
    assert code == 127, err

    stopped = await runtime.stop(config.id)
    # PID 1 recorded the exit code although the state dir is outside its root.
    assert (stopped.state, stopped.exit_code) == ("exited", 143)
    assert live_pids(netns_pids(netns)) == []


@pytest.mark.integration
@needs_root
@needs_busybox
async def test_rootfs_exit_code_and_start_errors(root, netns, cgroup_parent, rootfs, tmp_path):
    runtime = Runtime(root, cgroup_parent)
    config = with_fs(make_config(netns, ["sh", "-c", "echo in-rootfs; exit 5"]),
                     rootfs=str(rootfs))
    await runtime.start(config)
    st = await wait_exited(runtime, config.id)
    assert st.exit_code == 5 and log_of(runtime, config.id) == "in-rootfs\n"

    missing_dir = with_fs(make_config(netns, ["sh"]), rootfs=str(tmp_path / "no-such-dir"))
    with pytest.raises(ContainerError, match=f"rootfs {tmp_path}/no-such-dir is not a directory"):
        await runtime.start(missing_dir)

    # python3 exists on the host but not in the rootfs.
    not_inside = with_fs(make_config(netns, ["python3", "-V"]), rootfs=str(rootfs))
    with pytest.raises(ContainerError,
                       match=f"cannot run 'python3' in rootfs {rootfs}: No such file or directory"):
        await runtime.start(not_inside)
    st = await runtime.state(not_inside.id)
    assert (st.state, st.exit_code) == ("created", 127)

    bad_mount = with_fs(make_config(netns, ["true"]), rootfs=str(rootfs),
                        mounts=(Mount(str(tmp_path), "/bin/busybox/sub"),))
    with pytest.raises(ContainerError, match="mount point /bin/busybox/sub .*in the way"):
        await runtime.start(bad_mount)
    assert live_pids(netns_pids(netns)) == []


@pytest.mark.integration
@needs_root
async def test_binds_without_rootfs_go_onto_existing_host_paths_only(
        root, netns, cgroup_parent, tmp_path):
    runtime = Runtime(root, cgroup_parent)
    src = tmp_path / "src"
    src.mkdir()
    (src / "marker").write_text("from src\n")
    target = tmp_path / "target"
    target.mkdir()
    config = with_fs(make_config(netns, ["sh", "-c", f"cat {target}/marker; touch {target}/y; "
                                                     "echo exit=$?"]),
                     mounts=(Mount(str(src), str(target), readonly=True),))
    await runtime.start(config)
    st = await wait_exited(runtime, config.id)
    log = log_of(runtime, config.id)
    assert "from src" in log and "Read-only file system" in log and "exit=1" in log, log
    assert st.exit_code == 0
    # The bind lived only in the container's mount namespace.
    assert list(target.iterdir()) == [] and not (src / "y").exists()

    missing = tmp_path / "missing"
    bad = with_fs(make_config(netns, ["true"]), mounts=(Mount(str(src), str(missing)),))
    with pytest.raises(ContainerError, match=f"target {missing} does not exist"):
        await runtime.start(bad)
    assert not missing.exists()
    assert os.path.isdir(src)
