"""pyroute2 loaded by the parts the agent uses, not whole.

The package's __init__ imports every netlink family and tool it knows
(IPDB, NDB, wireless, IPVS, conntrack, devlink, plan9, ...): some 160 modules
and over 10 MB of every agent's memory, for the few rtnetlink classes the
kernel modules use. `install` puts the package in place without running that
__init__, so `from pyroute2 import AsyncIPRoute` loads pyroute2.iproute.linux
and what it needs, and `from pyroute2 import netns` that submodule. Any other
name asked of the package loads it whole, exactly as its own __init__ does:
nothing that uses pyroute2 otherwise sees a difference.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

# The names the package's __init__ exports that the agent uses, and where they live.
PARTS = {
    "AsyncIPRoute": "pyroute2.iproute.linux",
    "IPRoute": "pyroute2.iproute.linux",
    "NetlinkError": "pyroute2.netlink.exceptions",
}

_whole = threading.Lock()


def install() -> None:
    """Make `import pyroute2` load parts on demand; nothing if it is already loaded."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)

    def __getattr__(name: str):
        part = PARTS.get(name)
        if part is not None:
            value = getattr(importlib.import_module(part), name)
        elif name.startswith("__"):
            raise AttributeError(name)
        elif importlib.util.find_spec(f"pyroute2.{name}") is not None:
            value = importlib.import_module(f"pyroute2.{name}")
        else:
            _load_whole(package)
            if name not in package.__dict__:
                raise AttributeError(f"module 'pyroute2' has no attribute {name!r}")
            value = package.__dict__[name]
        setattr(package, name, value)
        return value

    package.__getattr__ = __getattr__   # type: ignore[method-assign]
    sys.modules["pyroute2"] = package


def _load_whole(package: ModuleType) -> None:
    """Run the package's own __init__ into it, once."""
    with _whole:
        if package.__dict__.get("_loaded_whole"):
            return
        package._loaded_whole = True   # type: ignore[attr-defined]
        assert package.__spec__ is not None and package.__spec__.loader is not None
        package.__spec__.loader.exec_module(package)
