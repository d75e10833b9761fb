"""What a network driver is to the agent.

A driver answers, for the networks of its kind that this host's containers
use: which kernel objects they need (its convergers, run by every
reconcile pass before the containers), which interface a container gets for
an attachment to one of them, whether that interface may carry the
container's default route, whether the container needs the gwbridge for its
egress instead, and where a published port is DNAT'ed. The planning is
pure; the convergers hold this host's caches, so each agent makes its own.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.host_networks import HostNetworks
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.veth import Interface
from agent.view import View
from proto.records import Attachment, Network


@dataclass(frozen=True)
class PortTarget:
    """Where a published port leads: a container's address on a bridge in the host namespace."""
    ip: str
    bridge: str


class NetworkConverger(Protocol):
    """Keeps the kernel objects of one driver's networks in use on this host as they should be."""

    async def converge(self, networks: Sequence[Network], began: float) -> None:
        """Build what `networks` need, remove what no network needs any more.
        `began`: when the pass started (wall clock), for timing events."""

    def forget(self) -> None:
        """Drop what the converger remembers of earlier passes: the next one re-checks everything."""


class Driver(Protocol):
    name: str                    # the Network.driver value it serves
    # Its interface may carry the container's default route (the first such attachment's does).
    carries_default_route: bool
    # A container whose networks give it no default route gets the gwbridge for egress when
    # one of its drivers asks for it.
    needs_gwbridge: bool

    def convergers(self, host: HostNetworks, vtep_ip: str, view: View) -> tuple[NetworkConverger, ...]:
        """This host's convergers for the driver's networks, in the order a pass runs them."""

    def interface(self, container_id: str, index: int, attachment: Attachment, network: Network,
                  host: HostNetworks, default_route: bool) -> Interface:
        """The container's eth<index> on `network`; `default_route`: it carries the default route."""

    def port_target(self, attachment: Attachment, network: Network, host: HostNetworks) -> PortTarget | None:
        """Where a port published by a container with this attachment as its default route leads,
        or None when the host cannot reach the attachment's address."""

    def host_bridges(self, networks: Sequence[Network], host: HostNetworks) -> list[LocalBridgeSpec]:
        """The bridges in the host namespace its networks put containers on (the host firewall
        NATs and isolates them)."""
