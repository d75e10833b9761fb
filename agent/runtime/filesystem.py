"""The container's view of the filesystem, set up by its PID 1 in its own mount namespace.

Without a rootfs the container sees the host's filesystem with its own /proc
and /sys, plus its -v binds on top of existing paths (nothing is created on
the host). With a rootfs (--rootfs DIR) it gets DIR as "/", with /proc, /sys,
a minimal /dev and the -v binds mounted inside, and the host's tree detached.
"""
from __future__ import annotations

import errno
import os
import stat

from agent import linux
from agent.runtime.model import ContainerConfig, Mount

# Bound from the host's /dev: a tmpfs /dev with only these is what Docker gives.
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
_MAX_SYMLINKS = 40  # as the kernel's path walk (ELOOP)
_PSEUDO_FS_FLAGS = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC


class FilesystemError(Exception):
    """The container's filesystem cannot be set up as configured; the message says why."""


def set_up(config: ContainerConfig) -> None:
    """Give the calling process (PID 1) a mount namespace with the container's filesystem."""
    # Made here rather than in the shim: pivot_root moves every process of
    # the namespace whose root is the old one, and the shim must stay on the
    # host's root to record the start in the state directory.
    linux.unshare(linux.CLONE_NEWNS)
    # Without this, the mounts below would propagate back to the host.
    linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE)
    if config.rootfs:
        _enter_rootfs(config.rootfs, config.mounts)
    else:
        _own_proc_and_sys()
        for mount in config.mounts:
            _bind(mount, _existing_host_target(mount))
    os.chdir("/")


def _own_proc_and_sys() -> None:
    # proc shows the pid namespace of whoever mounts it: PID 1 mounting it
    # makes `ps` inside list only the container.
    linux.mount("proc", "/proc", "proc", _PSEUDO_FS_FLAGS)
    # Likewise sysfs shows the mounter's network namespace (/sys/class/net),
    # as `ip netns exec` arranges it.
    try:
        linux.umount2("/sys", linux.MNT_DETACH)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: nothing mounted there
            raise
    linux.mount("sysfs", "/sys", "sysfs", _PSEUDO_FS_FLAGS)


def _existing_host_target(mount: Mount) -> str:
    # The container shares the host's tree here, so a missing target would
    # mean creating it on the host: refuse instead.
    where = f"mount {mount.source}:{mount.target}"
    if not os.path.exists(mount.target):
        raise FilesystemError(
            f"{where}: target {mount.target} does not exist (without a rootfs, targets must "
            f"already exist: nothing is created on the host's filesystem)")
    if os.path.isdir(mount.source) != os.path.isdir(mount.target):
        raise FilesystemError(f"{where}: one of source and target is a directory, the other not")
    return mount.target


def _enter_rootfs(rootfs: str, mounts: tuple[Mount, ...]) -> None:
    root = os.path.realpath(rootfs)
    if not os.path.isdir(root):
        raise FilesystemError(f"rootfs {rootfs} is not a directory")
    # pivot_root needs the new root to be a mount point; a bind onto itself makes it one.
    linux.mount(root, root, None, linux.MS_BIND | linux.MS_REC)
    linux.mount("proc", mount_point(root, "/proc", directory=True), "proc", _PSEUDO_FS_FLAGS)
    linux.mount("sysfs", mount_point(root, "/sys", directory=True), "sysfs",
                _PSEUDO_FS_FLAGS | linux.MS_RDONLY)
    _populate_dev(mount_point(root, "/dev", directory=True))
    for mount in mounts:
        target = mount_point(root, mount.target, directory=os.path.isdir(mount.source))
        _bind(mount, target)
    # pivot_root(".", ".") stacks the old root on top of the new one at "/";
    # detaching it uncovers the new root and cuts the container off the host's tree.
    os.chdir(root)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)


def _populate_dev(dev: str) -> None:
    # Not nodev: the device binds below keep the flags of the host's /dev mount anyway.
    linux.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID, "mode=755,size=65536k")
    for name in _DEVICES:
        host_node = f"/dev/{name}"
        if not os.path.exists(host_node):
            continue  # e.g. no /dev/tty on this host: the container does without
        node = f"{dev}/{name}"
        os.close(os.open(node, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
        linux.mount(host_node, node, None, linux.MS_BIND)
    for name, target in _DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts", 0o755)
    linux.mount("devpts", f"{dev}/pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620")
    os.mkdir(f"{dev}/shm", 0o1777)
    linux.mount("shm", f"{dev}/shm", "tmpfs", _PSEUDO_FS_FLAGS, "mode=1777,size=65536k")


def _bind(mount: Mount, target: str) -> None:
    linux.mount(mount.source, target, None, linux.MS_BIND | linux.MS_REC)
    if mount.readonly:
        # A bind inherits its flags but MS_RDONLY needs a remount, which
        # replaces all per-mount flags: carry nosuid/nodev/noexec over.
        kept = os.statvfs(target).f_flag & (os.ST_NOSUID | os.ST_NODEV | os.ST_NOEXEC)
        flags = ((linux.MS_NOSUID if kept & os.ST_NOSUID else 0)
                 | (linux.MS_NODEV if kept & os.ST_NODEV else 0)
                 | (linux.MS_NOEXEC if kept & os.ST_NOEXEC else 0))
        linux.mount("none", target, None,
                    linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | flags)


def mount_point(root: str, path: str, directory: bool) -> str:
    """The host path of `path` inside `root`, created if missing, never outside `root`.

    Symlinks are resolved as the container will see them (an absolute link
    starts again at `root`, ".." stops at it), so a rootfs whose /proc or
    /data is a link to "/etc" or "../../x" cannot make a mount land on the host.
    """
    host_path = resolve_in_root(root, path)
    where = f"mount point {path} in rootfs {root}"
    if host_path == root:
        raise FilesystemError(f"{where}: resolves to the rootfs itself")
    try:
        os.makedirs(os.path.dirname(host_path), exist_ok=True)
        if directory:
            os.makedirs(host_path, exist_ok=True)
        elif not os.path.lexists(host_path):
            os.close(os.open(host_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644))
    except (FileExistsError, NotADirectoryError):
        raise FilesystemError(f"{where}: a file is in the way of a directory") from None
    if os.path.isdir(host_path) != directory:
        kind = "a directory" if directory else "a file"
        raise FilesystemError(f"{where}: exists but is not {kind}, as its source is")
    return host_path


def resolve_in_root(root: str, path: str) -> str:
    """`path` resolved inside `root` as if `root` were "/" (like a chroot would see it)."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []  # existing, non-symlink components below root (then missing ones)
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)  # created later (or refused there if a file is in the way)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                raise FilesystemError(f"too many symlinks resolving {path} in rootfs {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        done.append(part)
    return os.path.join(root, *done)
