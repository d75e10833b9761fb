"""agent.oci without running containers: cgroup layouts, the overlay's layers, the container directory."""
from __future__ import annotations

import pytest

from agent.oci.cgroups import HYBRID, LEGACY, UNIFIED, HostCgroups
from agent.oci.container_dir import ContainerDir, Launched, Record
from agent.oci.model import ContainerError
from agent.oci.rootfs import Overlay

HYBRID_MOUNTINFO = """\
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
45 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
"""
UNIFIED_MOUNTINFO = "31 23 0:28 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def fake_tree(tmp_path, controllers: str = "") -> object:
    for name in ("cpu", "memory", "pids", "unified"):
        (tmp_path / name).mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text(controllers)
    (tmp_path / "memory" / "memory.memsw.limit_in_bytes").write_text("-1")
    return tmp_path


def test_a_hybrid_host_is_told_apart_and_a_cgroup2_controller_is_noticed(tmp_path):
    root = fake_tree(tmp_path, "hugetlb\n")
    mountinfo = HYBRID_MOUNTINFO.replace("/sys/fs/cgroup", str(root))
    host = HostCgroups.detect(mountinfo, root)
    assert host.mode == HYBRID and host.hide_v2_controllers and host.swap_limit
    assert host.hierarchies == tuple(root / n for n in ("cpu", "memory", "pids", "unified"))
    (root / "unified" / "cgroup.controllers").write_text("")
    assert not HostCgroups.detect(mountinfo, root).hide_v2_controllers


def test_unified_and_legacy_hosts(tmp_path):
    unified = HostCgroups.detect(UNIFIED_MOUNTINFO.replace("/sys/fs/cgroup", str(tmp_path)), tmp_path)
    assert unified.mode == UNIFIED and unified.hierarchies == (tmp_path,)
    assert not unified.hide_v2_controllers
    legacy_info = "\n".join(line for line in HYBRID_MOUNTINFO.splitlines() if "cgroup2" not in line)
    legacy = HostCgroups.detect(legacy_info.replace("/sys/fs/cgroup", str(tmp_path)), tmp_path)
    assert legacy.mode == LEGACY and not legacy.swap_limit and len(legacy.hierarchies) == 3


def test_leftover_cgroups_are_found_and_removed_by_parent(tmp_path):
    root = fake_tree(tmp_path)
    host = HostCgroups.detect(HYBRID_MOUNTINFO.replace("/sys/fs/cgroup", str(root)), root)
    cid = "c" * 64
    for hierarchy in ("cpu", "memory"):
        (root / hierarchy / "vxmesh-h1" / cid).mkdir(parents=True)
    (root / "pids" / "vxmesh-h1" / "not-a-container").mkdir(parents=True)
    assert host.container_ids("vxmesh-h1") == {cid}
    assert len(host.container_dirs("vxmesh-h1", cid)) == 2
    host.remove("vxmesh-h1", cid)  # empty directories stand in for cgroups here
    assert host.container_ids("vxmesh-h1") == set()
    host.remove_parent_if_empty("vxmesh-h1")
    assert not (root / "cpu" / "vxmesh-h1").exists()
    assert (root / "pids" / "vxmesh-h1").exists()  # still holds something


def test_overlay_options_refuse_paths_overlayfs_would_misread(tmp_path):
    overlay = Overlay(tmp_path / "image", tmp_path / "upper", tmp_path / "work", tmp_path / "root")
    assert overlay.options() == (f"lowerdir={tmp_path}/image,upperdir={tmp_path}/upper,"
                                 f"workdir={tmp_path}/work")
    with pytest.raises(ContainerError, match="must not contain"):
        Overlay(tmp_path / "a,b", tmp_path, tmp_path, tmp_path).options()


def test_a_missing_working_directory_is_made_in_the_writable_layer_only(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "srv").mkdir(parents=True)
    (lower / "file").write_text("x")
    (lower / "link").symlink_to("/etc")
    upper.mkdir()
    overlay = Overlay(lower, upper, tmp_path / "work", tmp_path / "root")
    overlay.ensure_directory("/srv/app/data")
    assert (upper / "srv" / "app" / "data").is_dir() and not (lower / "srv" / "app").exists()
    overlay.ensure_directory("/srv")  # exists below: nothing to do
    overlay.ensure_directory("/link/x")  # through a symlink: left for the runtime to report
    overlay.ensure_directory("/file/x")  # through a file: likewise
    assert sorted(p.name for p in upper.iterdir()) == ["srv"]
    assert not (tmp_path.parent / "etc" / "x").exists()


def test_the_container_directory_keeps_its_records_and_a_stand_in_exit_never_overwrites(tmp_path):
    files = ContainerDir(tmp_path / "c")
    files.prepare()
    assert files.read_record() is None and files.read_exit() is None
    files.write_record(Record("i", "web", "docker.io/library/busybox:latest", "sha256:1", ""))
    files.write_launched(Launched(10, 20, 1.5, 11, 21))
    assert files.read_record().name == "web" and files.read_launched().monitor_pid == 11
    files.exit_file.write_text("3")
    files.write_exit_if_missing(137)
    assert files.read_exit()[0] == 3
    files.prepare()  # a new run forgets the last one's records, keeps the log and the layer
    assert files.read_launched() is None and files.read_exit() is None
    files.write_exit_if_missing(137)
    assert files.read_exit()[0] == 137
    (files.path / "launched.json").write_text("{")
    with pytest.raises(ContainerError, match="corrupt state file"):
        files.read_launched()
    files.remove()
    assert not files.exists()
