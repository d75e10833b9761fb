"""`run --restart`: when this host's agent starts an exited container again.

Docker's rules: "on-failure" after a non-zero exit (at most MAX times with
on-failure:MAX), "always" and "unless-stopped" after any exit; never after
`stop` (the container's desired state is then "stopped", so the agent does
not start it; vxmesh keeps that across agent restarts, where Docker's
"always" would start it again). The delay before a restart starts at
FIRST_DELAY and doubles up to MAX_DELAY; a run that lasted RESET_AFTER
seconds resets it, as Docker's does.
"""
from __future__ import annotations

from proto import run_options

FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def delay(step: int) -> float:
    return min(FIRST_DELAY * (2 ** min(step, 20)), MAX_DELAY)


def due(policy: str, max_retries: int, exit_code: int, restart_count: int, backoff_step: int,
        started_at: float, finished_at: float) -> float | None:
    """When the exited container is to start again (a wall-clock time), or None: never.
    The step to use is `next_step`'s."""
    if not run_options.restarts(policy, max_retries, exit_code, restart_count):
        return None
    return finished_at + delay(next_step(backoff_step, started_at, finished_at))


def next_step(backoff_step: int, started_at: float, finished_at: float) -> int:
    """The back-off step of the coming restart: 0 after a run long enough to count as healthy."""
    return 0 if finished_at - started_at >= RESET_AFTER else backoff_step
