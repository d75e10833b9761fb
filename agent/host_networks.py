"""This host's own networking settings, from the agent's configuration.

The bridges every host has whatever the view says (the gwbridge for the
egress of overlay containers, the default bridge as Docker's docker0) and
the MTUs its links get. Drivers and convergers read it; it never changes
while the agent runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.gwbridge import GwBridgeSpec
from proto.validate import VXLAN_OVERHEAD


@dataclass(frozen=True)
class HostNetworks:
    host: str
    underlay_mtu: int
    gwbridge: GwBridgeSpec
    default_bridge: LocalBridgeSpec

    @property
    def overlay_mtu(self) -> int:
        # VXLAN adds its headers to every frame: containers get the rest, so nothing fragments.
        return self.underlay_mtu - VXLAN_OVERHEAD
