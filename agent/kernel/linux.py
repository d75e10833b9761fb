"""The few Linux syscalls network namespaces need that Python 3.11's os module lacks.

Kept in one small module so every ctypes call (and its errno handling) is in
one place; callers get an OSError naming the syscall and its arguments.
agent/kernel/netns.py creates and enters namespaces with them.
"""
from __future__ import annotations

import ctypes
import os

# <sched.h>
CLONE_NEWNET = 0x40000000

# <sys/mount.h>
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 0x100000

# The C library the interpreter itself is linked with. Not
# ctypes.util.find_library("c"): it forks `ldconfig -p` and parses its
# output, ~30-100 ms per call.
_libc = ctypes.CDLL(None, use_errno=True)

_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int
_libc.mount.argtypes = [
    ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
]
_libc.mount.restype = ctypes.c_int


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    """Move the calling thread into the namespace that `fd` refers to."""
    _check(_libc.setns(fd, nstype), f"setns(fd={fd}, nstype={nstype:#x})")


def unshare(flags: int) -> None:
    """Give the calling thread new namespaces."""
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


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


# <linux/nsfs.h>: _IO(0xb7, 0x3)
_NS_GET_NSTYPE = 0xB703


def ns_type(fd: int) -> int:
    """The CLONE_NEW* type of the namespace file `fd`; OSError if it is none."""
    import fcntl
    return fcntl.ioctl(fd, _NS_GET_NSTYPE)
