"""The agent's memory as the C library's allocator holds it (glibc; elsewhere nothing is done).

Two settings, for a process that lives for months and whose threads come and go:

- Arenas: glibc gives a thread that allocates while another holds an arena
  one of its own, up to eight per core, and memory freed in one is reused
  only by the threads that land on it. The agent's worker threads (netlink
  dumps, file writes, gRPC's) each leave one, with their free space held:
  `limit_arenas` caps them at two, as MALLOC_ARENA_MAX=2 would, set from
  inside so every way of starting the agent gets it. Its threads wait on
  the kernel far more than they contend for the allocator.
- Free memory given back: a snapshot of the view or a table read back whole
  allocates tens of megabytes for a moment; once freed, glibc keeps most of
  it. `give_back` returns the free pages to the kernel (malloc_trim), which
  the periodic pass calls, right after its own re-reads.
"""
from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

ARENAS = 2
M_ARENA_MAX = -8     # glibc's mallopt parameter number (malloc.h)


def _libc():
    try:
        return ctypes.CDLL(None)   # the symbols the process has: glibc's, where it runs on glibc
    except OSError:
        return None


_LIBC = _libc()


def limit_arenas(arenas: int = ARENAS) -> bool:
    """At most `arenas` malloc arenas from now on (call before threads start); False where
    the allocator has no such setting."""
    mallopt = getattr(_LIBC, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_ARENA_MAX, arenas))


def give_back() -> bool:
    """Return the allocator's free pages to the kernel; whether any were."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = (ctypes.c_size_t,)
    return bool(trim(0))
