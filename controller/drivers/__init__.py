"""The network drivers the controller knows, by name.

The store and the API never branch on a driver's name: they look the
driver up here and ask it (base.py says what a driver decides). Adding a
driver is its module in this package and its line in DRIVERS; the agent
has a registry of its own for its half (what to build in the kernel).
"""
from __future__ import annotations

from collections.abc import Mapping

from controller.drivers import bridge, host, null, overlay
from controller.drivers.base import FALSE, TRUE, Driver, NetworkRequest
from proto.errors import InvalidArgument
from proto.records import Network

DRIVERS: dict[str, Driver] = {d.name: d for d in (overlay.DRIVER, bridge.DRIVER, host.DRIVER, null.DRIVER)}
# What `network create` makes when no driver is given.
DEFAULT_DRIVER = overlay.DRIVER.name
# The networks every installation has, as in Docker: network name -> its driver.
BUILTIN: dict[str, Driver] = {d.builtin: d for d in DRIVERS.values() if d.builtin}
CREATABLE: tuple[str, ...] = tuple(name for name, d in DRIVERS.items() if d.creatable)
# The kinds of keys (proto/kinds.py) that reserve an attachment's address, one per driver that has addresses.
ADDRESS_KINDS: tuple[str, ...] = tuple(d.address_kind for d in DRIVERS.values() if d.address_kind)


def driver_for(network: str | Network) -> Driver:
    """The driver of a network, or of that name."""
    name = network if isinstance(network, str) else network.driver
    driver = DRIVERS.get(name)
    if driver is None:
        raise InvalidArgument(f"unknown network driver {name!r}: the drivers are {', '.join(DRIVERS)}")
    return driver


def for_create(request: NetworkRequest) -> tuple[Driver, dict[str, bool]]:
    """The driver `network create` asks for and the options it gave, parsed; refuses
    a driver that cannot be created, and what only other drivers take."""
    driver = DRIVERS.get(request.driver)
    if driver is None or not driver.creatable:
        raise InvalidArgument(
            f"unsupported network driver {request.driver!r}: use one of {', '.join(CREATABLE)}")
    flags = check_options(request.name, driver, request.options)
    if request.vni and not driver.takes_vni:
        takers = " or ".join(d.name for d in DRIVERS.values() if d.takes_vni)
        raise InvalidArgument(
            f"--vni is for {takers} networks; network {request.name!r} uses driver {driver.name!r}")
    return driver, flags


def check_options(name: str, driver: Driver, given: Mapping[str, str]) -> dict[str, bool]:
    """`--opt KEY[=VALUE]` as flags; an option only other drivers take may be
    given as false (it asks for nothing), never as true."""
    known = {option.key: option for d in DRIVERS.values() for option in d.options}
    flags: dict[str, bool] = {}
    for key, value in given.items():
        if key not in known:
            raise InvalidArgument(f"network {name!r}: unknown option {key!r}; "
                                  f"the options are: {', '.join(known)}")
        if value.lower() not in TRUE + FALSE:
            raise InvalidArgument(f"network {name!r}: option {key}={value!r} must be true or false")
        flags[key] = value.lower() in TRUE
    own = {option.key for option in driver.options}
    for key, wanted in flags.items():
        if wanted and key not in own:
            takers = " or ".join(d.name for d in DRIVERS.values() if known[key] in d.options)
            raise InvalidArgument(f"network {name!r}: only {takers} networks can {known[key].ability}, "
                                  f"not driver {driver.name!r}")
    return flags
