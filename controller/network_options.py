"""Driver options of `network create --opt KEY[=VALUE]`, checked before anything is stored.

As Docker's overlay driver, `--opt encrypted` asks for an overlay whose
VXLAN traffic is encrypted between the VTEPs (IPsec ESP). vxmesh refuses it
rather than create a network that would silently travel in clear; why, and
the design it would follow, are in docs/encryption.md. Pure: the caller
probes the kernel (controller/esp_support.py) when `encrypted` says so.
"""
from __future__ import annotations

from collections.abc import Mapping

from proto.errors import InvalidArgument

ENCRYPTED = "encrypted"
KNOWN = (ENCRYPTED,)
# Docker takes `--opt encrypted` and `--opt encrypted=true` alike.
_TRUE = ("", "true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def wants_encryption(name: str, driver: str, options: Mapping[str, str]) -> bool:
    """Whether the network is to be encrypted; InvalidArgument on an option vxmesh does not know."""
    for key, value in options.items():
        if key not in KNOWN:
            raise InvalidArgument(f"network {name!r}: unknown option {key!r}; "
                                  f"the options are: {', '.join(KNOWN)}")
        if value.lower() not in _TRUE + _FALSE:
            raise InvalidArgument(f"network {name!r}: option {key}={value!r} must be true or false")
    encrypted = options.get(ENCRYPTED, "false").lower() in _TRUE
    if encrypted and driver != "overlay":
        raise InvalidArgument(f"network {name!r}: only overlay networks can be encrypted, "
                              f"not driver {driver!r}")
    return encrypted
