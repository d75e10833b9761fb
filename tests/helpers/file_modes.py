"""Which files and directories break the rule for secrets (proto/private_files.py).

Files holding a container's configuration, environment or output, and keys,
are 0600 in directories of mode 0700; `loose_modes` lists what is not.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from proto.private_files import DIR_MODE

OWNER_ONLY = 0o700


def loose_modes(root: Path, skip: Callable[[Path], bool] = lambda path: False) -> list[str]:
    """Everything under `root` (itself included) that breaks the rule, as
    "MODE PATH" lines (directories end with '/'). Symbolic links, sockets and
    fifos hold nothing and are skipped, and so are the directories `skip`
    says are no secret's (with what is below them)."""
    found = []
    for directory, subdirectories, filenames in os.walk(root):
        top = Path(directory)
        subdirectories[:] = [d for d in subdirectories if not skip(top / d)]
        mode = stat.S_IMODE(top.lstat().st_mode)
        if mode != DIR_MODE:
            found.append(f"{mode:04o} {top}/")
        for name in filenames:
            info = (top / name).lstat()
            # Owner-only is the rule; crun writes its own state files 0700, which is.
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & ~OWNER_ONLY:
                found.append(f"{stat.S_IMODE(info.st_mode):04o} {top / name}")
    return sorted(found)


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """The regular files under `root` whose content holds `needle`."""
    return sorted(Path(d) / n for d, _, names in os.walk(root) for n in names
                  if (Path(d) / n).is_file() and not (Path(d) / n).is_symlink()
                  and needle in (Path(d) / n).read_bytes())
