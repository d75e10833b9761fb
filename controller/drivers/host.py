"""The host driver: Docker's `--network host`, the host's own network namespace.

A mode rather than a network: the pre-defined network `host` exists so
`network ls` shows it as Docker's does, but nothing attaches to it and
nothing is reserved for it (proto/network_mode.py parses the mode).
"""
from __future__ import annotations

from controller.drivers.base import LOCAL, Driver


class HostDriver(Driver):
    name = "host"
    scope = LOCAL
    builtin = "host"


DRIVER = HostDriver()
