"""What every command module shares: the call timeout."""
from __future__ import annotations

# How long one API call may take; `stop` adds its grace period.
RPC_TIMEOUT = 60.0
