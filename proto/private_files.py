"""Files that hold secrets: mode 0600, in directories of mode 0700.

A container's spec carries its environment (`-e` values are often
passwords and tokens), and the agent keeps copies of it on disk: the
record of what it built (agent/local_state.py), the runtime's config
(agent/oci: the bundle's config, crun's copy, exec sessions), the container's log. Keys
are written by `vxmesh certs` (cli/pki.py), and a controller's private
etcd keeps every spec in its data directory. Every such file is
readable by its owner (root) only, and so is the directory holding it,
so neither its content nor the names next to it show to anyone else.

Every write of such a file goes through here, so the rule exists once:
`private_dir` for the directories, `write_private` for files written
whole, `open_private` for files appended to (logs). Each also tightens
what an older version left with a looser mode.

Standard library only.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """`path` as a directory of mode 0700; the levels it creates above it are 0700 too."""
    path = Path(path)
    missing = []
    level = path
    while not level.exists():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    for directory in reversed(missing):
        # exist_ok: another process (a shim, a second agent) may make it meanwhile.
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # mkdir's mode passes through the umask
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: bytes | str, *, dir_fd: int | None = None) -> None:
    """Replace `path` whole (a reader sees the old or the new content, never
    half), mode 0600 from the first byte; with `dir_fd`, `path` is relative
    to that open directory."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    # Unique per writer: two threads may write the same file at once.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)  # O_CREAT's mode passes through the umask
            out.write(payload)
        os.replace(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def open_private(path: Path, *, append: bool) -> int:
    """A write-only fd of `path`, mode 0600: appended to, or truncated first."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through open()
    except BaseException:
        os.close(fd)
        raise
    return fd

