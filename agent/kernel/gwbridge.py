"""The per-host egress bridge (Docker's docker_gwbridge).

Every overlay container gets a second interface on this bridge carrying
its default route; the host masquerades that traffic out of its underlay.
Ports are isolated (see veth.Interface.isolated) and the firewall drops
traffic routed between them, so containers cannot reach each other here,
only through their overlay (Docker's icc=false).

This module owns only the link. Its NAT and filter rules are part of the
host's one nftables table, which agent/kernel/firewall.py rebuilds from
everything the host needs: pass `firewall_rules(spec)` among its bridges.
"""
from __future__ import annotations

from dataclasses import dataclass

from agent.kernel.bridge import LocalBridgeSpec, ensure_bridge, remove_bridge
from agent.kernel.firewall import BridgeRules
from agent.names import GWBRIDGE


@dataclass(frozen=True)
class GwBridgeSpec:
    name: str = GWBRIDGE
    subnet: str = "172.18.0.0/16"
    gateway: str = "172.18.0.1"
    mtu: int = 1500

    def __post_init__(self) -> None:
        self.bridge()  # validates name, addressing and mtu

    def bridge(self) -> LocalBridgeSpec:
        return LocalBridgeSpec(
            name=self.name, subnet=self.subnet, gateway=self.gateway, mtu=self.mtu
        )


def firewall_rules(spec: GwBridgeSpec) -> BridgeRules:
    """The gwbridge's entry in firewall.HostRules.bridges (no icc)."""
    return BridgeRules(
        name=spec.name, subnet=spec.subnet, gateway=spec.gateway, icc=False
    )


async def ensure_gwbridge(spec: GwBridgeSpec = GwBridgeSpec()) -> None:
    """Bridge up with the gateway address and forwarding on (no nftables)."""
    await ensure_bridge(spec.bridge())


async def remove_gwbridge(spec: GwBridgeSpec = GwBridgeSpec()) -> None:
    """Delete the bridge; absent is fine. The firewall table is not touched."""
    await remove_bridge(spec.name)
