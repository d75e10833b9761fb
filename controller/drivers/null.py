"""The null driver: Docker's `--network none`, a namespace with only `lo`.

A mode rather than a network: the pre-defined network `none` exists so
`network ls` shows it as Docker's does, but nothing attaches to it and
nothing is reserved for it (proto/network_mode.py parses the mode).
"""
from __future__ import annotations

from controller.drivers.base import LOCAL, Driver


class NullDriver(Driver):
    name = "null"
    scope = LOCAL
    builtin = "none"


DRIVER = NullDriver()
