"""Where `logs --tail N` starts reading a container's log: after its last N lines.

The log is read backwards a block at a time until N line ends are found
(the last byte's own newline does not count: a log that ends with a line's
newline has that line last), so a long log is not read whole to show its
end. The request's `tail` is Docker's `--tail` (proto/validate.py's
log_tail): "all" (or "") the whole log, a number the last that many lines,
0 nothing written so far (what `attach` wants).
"""
from __future__ import annotations

import os
from typing import BinaryIO

BLOCK = 64 * 1024


def tail_offset(log: BinaryIO, lines: int) -> int:
    """The offset in `log` where its last `lines` lines begin."""
    end = log.seek(0, os.SEEK_END)
    if lines == 0 or end == 0:
        return end
    log.seek(end - 1)
    # A final newline ends the last line; one missing, the last line is still being written.
    wanted = lines + (1 if log.read(1) == b"\n" else 0)
    position = end
    while position > 0:
        start = max(0, position - BLOCK)
        log.seek(start)
        block = log.read(position - start)
        index = len(block)
        while (index := block.rfind(b"\n", 0, index)) >= 0:
            wanted -= 1
            if wanted == 0:
                return start + index + 1
        position = start
    return 0
