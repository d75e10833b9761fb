"""The lab's exceptions: every failure of the lab tooling is a LabError."""
from __future__ import annotations

import subprocess


class LabError(RuntimeError):
    """The lab could not be built, started, queried or torn down."""


class LabExists(LabError):
    """`up()` was asked for a prefix whose lab (or its leftovers) is present."""


class LabCommandError(subprocess.CalledProcessError):
    """A command run for the caller (CLI, `netns_exec`) exited non-zero."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"
