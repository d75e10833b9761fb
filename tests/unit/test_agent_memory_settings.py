"""The agent's allocator settings (agent/memory.py), in fresh interpreters: glibc
arenas counted in /proc/self/maps while eight threads allocate at once."""
from __future__ import annotations

import subprocess
import sys

import pytest

from agent import memory

# Eight threads alive at once, each allocating from the C heap (bytearrays of
# this size bypass Python's small-object allocator); then the heaps glibc made
# for its non-main arenas: mappings at 64 MiB boundaries (its HEAP_MAX_SIZE).
COUNT_ARENAS = """
import sys, threading
from agent import memory
if sys.argv[1] == "limited":
    assert memory.limit_arenas(2)
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    kept = [bytearray(200_000) for _ in range(20)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
heaps = 0
for line in open("/proc/self/maps"):
    start, end = (int(x, 16) for x in line.split()[0].split("-"))
    if start % (64 << 20) == 0 and len(line.split()) == 5:
        heaps += 1
print(heaps)
"""


def _arenas(mode: str) -> int:
    proc = subprocess.run([sys.executable, "-c", COUNT_ARENAS, mode], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout)


@pytest.mark.skipif(memory._LIBC is None or not hasattr(memory._LIBC, "mallopt"), reason="not glibc")
def test_the_agent_keeps_at_most_two_arenas():
    assert _arenas("limited") <= 1           # the main arena and one more
    # Control: glibc's default gives the threads several.
    assert _arenas("default") >= 3


# 20 MB freed in holes between small blocks still held: free() cannot shrink the
# heap past them, so the pages stay the process's until they are given back.
GIVE_BACK = """
import sys
from agent import memory
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) // 1024
big, pins = [], []
for _ in range(200):
    chunk = bytearray(100_000)
    for i in range(0, len(chunk), 4096):
        chunk[i] = 1                      # its pages in use
    big.append(chunk)
    pins.append(bytearray(5000))
del big, chunk
before = rss()
given = memory.give_back() if sys.argv[1] == "give" else False
print(before - rss(), given)
"""


def _given_back(mode: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-c", GIVE_BACK, mode], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    mb, given = proc.stdout.split()
    return int(mb), given


@pytest.mark.skipif(memory._LIBC is None or not hasattr(memory._LIBC, "malloc_trim"), reason="not glibc")
def test_freed_memory_goes_back_to_the_kernel():
    mb, given = _given_back("give")
    assert given == "True" and mb >= 15
    # Control: without it the freed pages stay in the process.
    assert _given_back("keep")[0] < 5
