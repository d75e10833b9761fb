"""Linux capabilities as `--cap-add`, `--cap-drop` and `--privileged` use them, and Docker's default set.

A container's capability set is computed once, here, the way Docker does:
start from the 14 capabilities Docker grants by default (`DEFAULT`), take
away `--cap-drop` (ALL: every one), then add `--cap-add` (ALL: every one; an
added capability wins over a dropped one). Names are accepted in any case, with or without
the `CAP_` prefix, as Docker accepts them. `--privileged` grants every
capability the host holds.

Standard library only: the CLI checks the names before a daemon sees them.
"""
from __future__ import annotations

from collections.abc import Iterable

from proto.errors import InvalidArgument

# Bit numbers from linux/capability.h.
BITS: dict[str, int] = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
ALL = "ALL"

# Docker's default grant: enough to run a typical service as root (own files,
# switch users, bind low ports, send raw packets for ping), nothing that
# reaches the host (no SYS_ADMIN, NET_ADMIN, SYS_MODULE, SYS_PTRACE, ...).
DEFAULT: frozenset[str] = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
})


def canonical(name: object) -> str:
    """`net_admin`, `NET_ADMIN`, `cap_net_admin` -> `CAP_NET_ADMIN`; `all` -> `ALL`."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"invalid capability {name!r}")
    upper = name.upper()
    if upper == ALL:
        return ALL
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in BITS:
        raise InvalidArgument(f"unknown capability {name!r}: see capabilities(7) for the names")
    return full


def resolve(add: Iterable[str] = (), drop: Iterable[str] = (), *, privileged: bool = False,
            available: Iterable[str] | None = None) -> list[str]:
    """The container's capabilities, sorted by bit.

    `available`: what the host can grant (its own bounding set; None: every
    capability in BITS). "All" means all of those, and nothing outside them
    is ever granted: a runtime cannot give more than it holds.
    """
    known = set(BITS) if available is None else {canonical(n) for n in available}
    added = {canonical(n) for n in add}
    dropped = {canonical(n) for n in drop}
    if privileged:
        granted = set(known)
    else:
        granted = set() if ALL in dropped else set(DEFAULT) - dropped
        granted |= set(known) if ALL in added else added - {ALL}
    return sorted(granted & known, key=BITS.__getitem__)


def mask(names: Iterable[str]) -> int:
    """The set as /proc/PID/status shows it (CapEff: 00000000a80425fb for DEFAULT)."""
    return sum(1 << BITS[canonical(n)] for n in names)


def from_mask(value: int) -> list[str]:
    """The names of the bits set in `value` (e.g. a CapBnd line of /proc/PID/status)."""
    return [name for name, bit in sorted(BITS.items(), key=lambda item: item[1]) if value >> bit & 1]
