"""The overlay driver: one network across hosts, VXLAN between them.

On each host using the network: a namespace with br0 (the gateway
address) and vx<vni>, and the table of the other hosts' endpoints. A
container's interface is a veth into that namespace; the network carries
no default route (the gateway is on every host at once), so an
overlay-only container gets the gwbridge for its egress, as Docker's
docker_gwbridge. Its address lives in the network's own namespace, out of
the host's reach: its published ports lead to the gwbridge address.
"""
from __future__ import annotations

from collections.abc import Sequence

from agent import names
from agent.convergers.overlay_networks import OverlayNetworks
from agent.convergers.tables import Tables
from agent.drivers.base import NetworkConverger, PortTarget
from agent.host_networks import HostNetworks
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.veth import Interface
from agent.view import View
from proto.addresses import prefixlen
from proto.records import Attachment, Network


class OverlayDriver:
    name = "overlay"
    carries_default_route = False
    needs_gwbridge = True

    def convergers(self, host: HostNetworks, vtep_ip: str, view: View) -> tuple[NetworkConverger, ...]:
        # The namespaces first: the tables live on their vx<vni> devices.
        return OverlayNetworks(host, vtep_ip), Tables(host.host, view)

    def interface(self, container_id: str, index: int, attachment: Attachment, network: Network,
                  host: HostNetworks, default_route: bool) -> Interface:
        return Interface(
            container_netns=names.container_netns(host.host, container_id),
            ifname=names.container_ifname(index),
            peer_netns=names.overlay_netns(host.host, network.vni),
            peer_ifname=names.overlay_veth(container_id, index), bridge=names.BRIDGE,
            address=f"{attachment.ip}/{prefixlen(network.subnet)}", mac=attachment.mac,
            mtu=host.overlay_mtu, default_gateway=None)

    def port_target(self, attachment: Attachment, network: Network, host: HostNetworks) -> PortTarget | None:
        return None

    def host_bridges(self, networks: Sequence[Network], host: HostNetworks) -> list[LocalBridgeSpec]:
        return []


DRIVER = OverlayDriver()
