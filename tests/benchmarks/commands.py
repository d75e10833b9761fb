"""Running a command for a benchmark: its result, or a RuntimeError carrying its stderr."""
from __future__ import annotations

import subprocess

CMD_TIMEOUT = 120


def sh(*argv: str, check: bool = True, timeout: float = CMD_TIMEOUT) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc
