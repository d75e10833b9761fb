"""The network drivers the agent knows, by name: a network's `driver` field picks one.

Adding a driver is its module here (see base.py for what it answers: the
kernel objects its networks need, the interface a container gets on one)
and its row in DRIVERS; nothing else in the agent names a driver.

`host` and `none` are network modes (proto/network_mode.py), not networks
a container attaches to: the agent has no driver for the built-in networks
that stand for them.
"""
from __future__ import annotations

from collections.abc import Iterable

from agent.drivers import bridge, overlay
from agent.drivers.base import Driver
from agent.host_networks import HostNetworks
from agent.kernel.bridge import LocalBridgeSpec
from proto.records import Network

# In the order a pass converges their networks.
DRIVERS: dict[str, Driver] = {driver.name: driver for driver in (overlay.DRIVER, bridge.DRIVER)}


class UnknownDriver(LookupError):
    """A network of a driver this agent does not have (say, made by a newer controller)."""


def driver_of(network: Network) -> Driver:
    driver = DRIVERS.get(network.driver)
    if driver is None:
        raise UnknownDriver(f"network {network.name!r} uses driver {network.driver!r}, which this agent "
                            f"does not have (it has {', '.join(DRIVERS)})")
    return driver


def by_driver(networks: Iterable[Network]) -> dict[str, list[Network]]:
    """Every driver's name with its networks among `networks` (none: an empty list)."""
    grouped: dict[str, list[Network]] = {name: [] for name in DRIVERS}
    for network in networks:
        grouped[driver_of(network).name].append(network)
    return grouped


def host_bridges(networks: Iterable[Network], host: HostNetworks) -> list[LocalBridgeSpec]:
    """The bridges in the host namespace that the networks' containers sit on."""
    grouped = by_driver(networks)
    return [spec for name, driver in DRIVERS.items() for spec in driver.host_bridges(grouped[name], host)]


def container_bridge_names(networks: Iterable[Network], host: HostNetworks) -> set[str]:
    """Every bridge in the host namespace that containers' traffic arrives by: the
    gwbridge and the drivers' bridges (the VTEP filter drops VXLAN from them)."""
    return {host.gwbridge.name} | {spec.name for spec in host_bridges(networks, host)}
