"""The bridge driver: a network instantiated on each host separately (Docker's
"local" scope), a bridge in the host namespace.

The built-in `bridge` network is the host's default bridge (vxmesh0, as
docker0); a user bridge network gets vxb<id>. No VXLAN and no table: its
containers reach each other on this host only. Its interface carries the
container's default route (the first bridge network's does) and so the
container's published ports, DNAT'ed to its address on that bridge.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from agent import names
from agent.convergers.local_bridges import LocalBridges
from agent.drivers.base import NetworkConverger, PortTarget
from agent.host_networks import HostNetworks
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.veth import Interface
from agent.view import View
from proto.records import Attachment, Network


def bridge_spec(network: Network, host: HostNetworks) -> LocalBridgeSpec:
    """The kernel bridge of a bridge network on this host."""
    if network.builtin:
        return host.default_bridge
    return LocalBridgeSpec(name=names.local_bridge(network.id), subnet=network.subnet,
                           gateway=network.gateway, mtu=host.underlay_mtu)


class BridgeDriver:
    name = "bridge"
    carries_default_route = True
    needs_gwbridge = False

    def convergers(self, host: HostNetworks, vtep_ip: str, view: View) -> tuple[NetworkConverger, ...]:
        return (LocalBridges(partial(self.host_bridges, host=host)),)

    def interface(self, container_id: str, index: int, attachment: Attachment, network: Network,
                  host: HostNetworks, default_route: bool) -> Interface:
        bridge = bridge_spec(network, host)
        return Interface(
            container_netns=names.container_netns(host.host, container_id),
            ifname=names.container_ifname(index), peer_netns=None,
            peer_ifname=names.bridge_veth(container_id, index), bridge=bridge.name,
            address=f"{attachment.ip}/{bridge.prefixlen}", mac=attachment.mac, mtu=bridge.mtu,
            default_gateway=bridge.gateway if default_route else None, hairpin=True)

    def port_target(self, attachment: Attachment, network: Network, host: HostNetworks) -> PortTarget | None:
        return PortTarget(ip=attachment.ip, bridge=bridge_spec(network, host).name)

    def host_bridges(self, networks: Sequence[Network], host: HostNetworks) -> list[LocalBridgeSpec]:
        """The default bridge always (as docker0), and each network's."""
        bridges = {host.default_bridge.name: host.default_bridge}
        for network in networks:
            spec = bridge_spec(network, host)
            bridges[spec.name] = spec
        return list(bridges.values())


DRIVER = BridgeDriver()
