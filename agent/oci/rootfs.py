"""A container's root filesystem: overlayfs over its image, with a writable layer of its own.

lowerdir = the unpacked image (shared by every container of that image,
never written), upperdir/workdir = the container's own directories, kept
across restarts and removed with the container, as Docker's.

The overlay is mounted by the container's monitor in a mount namespace of
its own (monitor.py), not on the host: it exists exactly as long as the
container's processes, and a crash of anything leaves no mount behind.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.oci.model import ContainerError

# overlayfs reads these in its mount options as separators and escapes.
_RESERVED = (",", ":", "\\")


@dataclass(frozen=True)
class Overlay:
    lower: Path
    upper: Path
    work: Path
    target: Path

    def options(self) -> str:
        for path in (self.lower, self.upper, self.work):
            if any(c in str(path) for c in _RESERVED):
                raise ContainerError(f"overlay layer {path}: its path must not contain "
                                     f"{' '.join(_RESERVED)}")
        return f"lowerdir={self.lower},upperdir={self.upper},workdir={self.work}"

    def ensure_directory(self, path: str) -> None:
        """Create `path` (absolute, in the container) in the writable layer when no layer has it.

        Docker creates a missing working directory; a path through a symlink
        or a file is left alone (the runtime then reports it), as the link
        would be resolved against the host's root here, not the container's.
        """
        parts = PurePosixPath(path).parts[1:]
        for depth in range(1, len(parts) + 1):
            relative = Path(*parts[:depth])
            kinds = [_kind(layer / relative) for layer in (self.upper, self.lower)]
            if "other" in kinds[:1] or kinds[0] is None and kinds[1] == "other":
                return
            if "dir" in kinds:
                continue
            (self.upper / Path(*parts)).mkdir(mode=0o755, parents=True, exist_ok=True)
            return


def _kind(path: Path) -> str | None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return "other"
    return "dir" if stat.S_ISDIR(mode) else "other"
