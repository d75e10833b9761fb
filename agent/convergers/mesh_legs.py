"""The routing mesh on this host: its legs into networks, and the published ports behind them.

The leading controller gives every live host a leg into each network a
service publishes on in ingress mode: an address from the network's IPAM
and an endpoint row named _mesh.<host>, so every member's table knows it
(controller/services/reconciler.py). Here the leg becomes a veth pair from
the host's namespace to br0 of the overlay namespace (the host end carries
the address, hence a route into the network), and each published port a
MeshRule of the host's firewall (agent/kernel/firewall.py): DNAT to a task
picked per connection, masqueraded to the leg's address.
"""
from __future__ import annotations

from agent import names
from agent.host_networks import HostNetworks
from agent.kernel import veth
from agent.kernel.firewall import MeshRule
from agent.kernel.veth import Interface
from agent.view import View
from proto.addresses import parse_subnet
from proto.records import Network


class MeshLegs:
    def __init__(self, host: HostNetworks, view: View):
        self.host = host
        self.view = view
        self._built: dict[str, Interface] = {}     # network -> its leg as last made

    def legs(self, networks: dict[str, Network]) -> dict[str, Interface]:
        """This host's legs the view asks for, on the networks this pass builds."""
        wanted = {}
        for leg in self.view.mesh_legs():
            network = networks.get(leg.network)
            if network is None or network.scope != "global":
                continue
            prefix = parse_subnet(network.subnet, bounded=False).prefixlen
            wanted[leg.network] = Interface(
                container_netns=None, ifname=names.mesh_leg_ifname(network.vni),
                peer_netns=names.overlay_netns(self.host.host, network.vni),
                peer_ifname=names.mesh_leg_bridge_ifname(network.vni), bridge=names.BRIDGE,
                address=f"{leg.ip}/{prefix}", mac=leg.mac, mtu=self.host.overlay_mtu, default_gateway=None)
        return wanted

    async def converge(self, networks: dict[str, Network]) -> list[MeshRule]:
        """Build the legs (after the overlays they lead into); the firewall rules they carry."""
        wanted = self.legs(networks)
        for network, interface in wanted.items():
            if self._built.get(network) != interface:
                self._built.pop(network, None)
                await veth.ensure_interface(interface)
                self._built[network] = interface
        for network in set(self._built) - set(wanted):
            del self._built[network]
        # Level-triggered: whatever leg the host has and the view no longer gives it goes,
        # also one this agent built before a restart. A leftover leg on br0 would answer
        # for the MAC of the task that gets its address next.
        await veth.remove_unlisted(names.MESH_LEG_PATTERN, {i.ifname for i in wanted.values()})
        rules = []
        for network, interface in sorted(wanted.items()):
            for vip in self.view.vips(network):
                for port in vip.ports:
                    rules.append(MeshRule(port.protocol, port.host_port, tuple(vip.backends),
                                          port.container_port, interface.ifname))
        return sorted(rules, key=lambda r: (r.protocol, r.published))

    def forget(self) -> None:
        self._built.clear()
