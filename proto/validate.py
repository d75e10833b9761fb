"""Every naming and range rule of vxmesh, once, for the CLI, the controller and the agent.

A rule that exists twice drifts: the controller once took 63-character
mixed-case host names while the agent refused anything over 24 lowercase
characters. Each function here returns the value (canonical where that
matters) or raises `InvalidArgument` naming the value and the rule, so the
CLI, the controller's API and the agent's config all refuse the same input
with the same words.

Where Docker and the kernel disagree with a stricter choice, Docker's rule
wins as far as the kernel can carry it: container and network names are
Docker's, host names are RFC 1123 labels (they become DNS names and parts of
namespace and cgroup names), interface names fit the kernel's 15 characters.

Standard library only: the provisioning script checks config files with it.
"""
from __future__ import annotations

import re

from proto.errors import InvalidArgument

# Docker's container and network names ([a-zA-Z0-9][a-zA-Z0-9_.-]*), capped
# at a DNS label's 63 characters: names become etcd key parts and DNS names.
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)

# RFC 1123 host name label, lowercase: a host name names namespaces, cgroups
# and certificates, where two names differing only in case would collide.
HOST_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_HOST_NAME = re.compile(HOST_NAME_PATTERN)
HOST_NAME_RULE = ("lowercase letters, digits and '-', not starting or ending with '-', at most "
                  "63 characters (an RFC 1123 label)")

# A container's hostname (`run --hostname`): RFC 1123 labels joined by dots,
# as DNS and sethostname take them (letters of either case: DNS ignores it).
# No NUL, newline, '/' or space reaches the container's UTS namespace or its
# /etc/hosts. At most 63 characters, as Docker takes it (the kernel allows 64).
_HOSTNAME_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
HOSTNAME_MAX = 63
HOSTNAME_RULE = ("RFC 1123 labels (letters, digits and '-', not starting or ending with '-') "
                 "joined by dots")

# Ids are made by the controller (secrets.token_hex(32)), as Docker's.
ID_PATTERN = r"^[0-9a-f]{64}$"
_ID = re.compile(ID_PATTERN)

VNI_MIN = 1
VNI_MAX = (1 << 24) - 1
# Automatic VNIs start high so they stay clear of small numbers users like to pin.
AUTO_VNI_START = 4096

# The smallest MTU an IPv4 link may have (RFC 791); the kernel refuses less.
MTU_MIN = 68
MTU_MAX = 65535
# What VXLAN over IPv4 adds to every frame: outer IPv4 (20) + UDP (8) +
# VXLAN (8) + inner Ethernet (14). Container links get the underlay's MTU minus this.
VXLAN_OVERHEAD = 50
UNDERLAY_MTU_MIN = MTU_MIN + VXLAN_OVERHEAD

PORT_MIN = 1
PORT_MAX = 65535
PROTOCOLS = ("tcp", "udp")

IFNAME_MAX = 15  # IFNAMSIZ - 1


def name(kind: str, value: object) -> str:
    """A container or network name (`kind` says which, for the message)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidArgument(
            f"invalid {kind} name {_shown(value)}: it must match {NAME_PATTERN} "
            "(a letter or digit first, then letters, digits, '_', '.' or '-', at most 63 characters)")
    return value


def host_name(value: object) -> str:
    if not isinstance(value, str) or not _HOST_NAME.fullmatch(value):
        raise InvalidArgument(f"invalid host name {_shown(value)}: it must be {HOST_NAME_RULE}")
    return value


def hostname(value: object) -> str:
    """A container's hostname (not a vxmesh host's name: see host_name)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid hostname {_shown(value)}: it must be a string")
    if len(value) > HOSTNAME_MAX:
        raise InvalidArgument(f"hostname is {len(value)} characters (at most {HOSTNAME_MAX})")
    if not all(_HOSTNAME_LABEL.fullmatch(label) for label in value.split(".")):
        raise InvalidArgument(f"invalid hostname {_shown(value)}: it must be {HOSTNAME_RULE}")
    return value


def object_id(kind: str, value: object) -> str:
    """A container's or network's id: 64 lowercase hex digits."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidArgument(f"invalid {kind} id {_shown(value)}: it must be 64 lowercase hex digits")
    return value


def vni(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not VNI_MIN <= value <= VNI_MAX:
        raise InvalidArgument(f"invalid VNI {value!r}: it must be between {VNI_MIN} and {VNI_MAX}")
    return value


def mtu(value: object, what: str = "mtu") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MTU_MIN <= value <= MTU_MAX:
        raise InvalidArgument(f"invalid {what} {value!r}: it must be between {MTU_MIN} and {MTU_MAX}")
    return value


def underlay_mtu(value: object) -> int:
    """An underlay's MTU must leave room for VXLAN and a minimal inner packet."""
    if isinstance(value, bool) or not isinstance(value, int) or not UNDERLAY_MTU_MIN <= value <= MTU_MAX:
        raise InvalidArgument(
            f"invalid underlay MTU {value!r}: it must be between {UNDERLAY_MTU_MIN} "
            f"({MTU_MIN} for the containers plus {VXLAN_OVERHEAD} of VXLAN) and {MTU_MAX}")
    return value


def port(value: object, what: str = "port", *, zero_ok: bool = False) -> int:
    """A TCP/UDP port number; `zero_ok` for a host port where 0 asks for a free one."""
    low = 0 if zero_ok else PORT_MIN
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= PORT_MAX:
        raise InvalidArgument(f"invalid {what} {value!r}: it must be between {PORT_MIN} and {PORT_MAX}")
    return value


def protocol(value: object) -> str:
    if value not in PROTOCOLS:
        raise InvalidArgument(f"invalid protocol {value!r}: use {' or '.join(PROTOCOLS)}")
    return value  # type: ignore[return-value]


def ifname(value: str) -> str:
    """An interface name the kernel accepts."""
    if not value or len(value) > IFNAME_MAX:
        raise InvalidArgument(f"interface name {value!r} is {len(value)} characters; "
                              f"Linux allows 1..{IFNAME_MAX}")
    if value in (".", "..") or any(c in value for c in "/: \t\n\0"):
        raise InvalidArgument(f"interface name {value!r} contains '/', ':', NUL or white space")
    return value


def _shown(value: object) -> str:
    """The value in a message: quoted, and cut short so a megabyte of input stays one line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def log_tail(tail: str) -> int | None:
    """Docker's `logs --tail`: None for the whole log ("" or "all"), else how many
    lines from its end."""
    if tail in ("", "all"):
        return None
    if not (tail.isascii() and tail.isdigit()):
        raise InvalidArgument(f"invalid --tail {_shown(tail)}: a number of lines, or all")
    return int(tail)
