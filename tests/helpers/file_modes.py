"""Which files and directories break the rule for secrets (proto/private_files.py).

Files holding a container's configuration, environment or output, and keys,
are 0600 in directories of mode 0700; `loose_modes` lists what is not.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from proto.private_files import DIR_MODE, FILE_MODE


def loose_modes(root: Path) -> list[str]:
    """Everything under `root` (itself included) that breaks the rule, as
    "MODE PATH" lines (directories end with '/'). Symbolic links, sockets and
    fifos hold nothing and are skipped."""
    found = []
    for directory, _, filenames in os.walk(root):
        top = Path(directory)
        mode = stat.S_IMODE(top.lstat().st_mode)
        if mode != DIR_MODE:
            found.append(f"{mode:04o} {top}/")
        for name in filenames:
            info = (top / name).lstat()
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != FILE_MODE:
                found.append(f"{stat.S_IMODE(info.st_mode):04o} {top / name}")
    return sorted(found)


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """The regular files under `root` whose content holds `needle`."""
    return sorted(Path(d) / n for d, _, names in os.walk(root) for n in names
                  if (Path(d) / n).is_file() and not (Path(d) / n).is_symlink()
                  and needle in (Path(d) / n).read_bytes())
