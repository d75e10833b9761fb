"""The few Linux syscalls the runtime needs that Python 3.11's os module lacks.

Kept in one small module so every ctypes call (and its errno handling) is in
one place; callers get an OSError naming the syscall and its arguments.
"""
from __future__ import annotations

import ctypes
import os
import platform

# <sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# <sys/mount.h>
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_BIND = 0x1000
MS_SHARED = 0x100000
MNT_DETACH = 0x2

HOST_NAME_MAX = 64

# The C library the interpreter itself is linked with. Not
# ctypes.util.find_library("c"): it forks `ldconfig -p` and parses its
# output, ~30-100 ms of every container start (the shim imports this module).
_libc = ctypes.CDLL(None, use_errno=True)

_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.sethostname.restype = ctypes.c_int
_libc.mount.argtypes = [
    ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
_libc.statfs.restype = ctypes.c_int
_libc.syscall.restype = ctypes.c_long

# glibc has no pivot_root() wrapper; the syscall number depends on the architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    """Move the calling thread into the namespace that `fd` refers to."""
    _check(_libc.setns(fd, nstype), f"setns(fd={fd}, nstype={nstype:#x})")


def unshare(flags: int) -> None:
    """Give the caller new namespaces (CLONE_NEWPID applies to later children)."""
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), f"sethostname({name!r})")


def mount(source: str, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype is not None else None,
            flags,
            data.encode() if data is not None else None,
        ),
        f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x})",
    )


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount2({target!r}, {flags:#x})")


def pivot_root(new_root: str, put_old: str) -> None:
    """Make `new_root` the caller's mount namespace root, moving the old one to `put_old`."""
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unsupported architecture {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(number), new_root.encode(), put_old.encode()),
           f"pivot_root({new_root!r}, {put_old!r})")


def statfs_type(path: str) -> int:
    """f_type of statfs(2) on `path`: the filesystem's magic number (os.statvfs lacks it)."""
    # struct statfs is 120 bytes on 64-bit Linux and starts with f_type (a
    # long); the spare room covers other layouts.
    buf = ctypes.create_string_buffer(256)
    _check(_libc.statfs(path.encode(), buf), f"statfs({path!r})")
    return ctypes.c_long.from_buffer(buf).value
