"""Which interfaces a container should have, and where its published ports lead.

Pure planning, no kernel calls: the reconcile loop turns the plan into
veths (agent.kernel.veth) and nftables rules (agent.kernel.firewall).

Docker's rules, kept here in one place:
- each attached network is one interface, eth<N>; N is chosen when the
  network is first attached and kept (stored in the local record), so
  `network connect`/`disconnect` never renames the others;
- the default route goes through the first bridge network; an overlay-only
  container gets an extra interface on the gwbridge for it (Docker's
  docker_gwbridge), which a bridge network makes unnecessary;
- a published port is DNAT'ed to the address on that default-route network.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from agent import names
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.firewall import BridgeRules, PortRule
from agent.kernel.gwbridge import GwBridgeSpec
from agent.kernel.veth import Interface
from agent.local_state import LocalContainer
from proto.records import ContainerSpec, Network

# The key of the gwbridge interface in LocalContainer.ifnames (no network
# name can contain "@").
GWBRIDGE_KEY = "@gwbridge"


@dataclass(frozen=True)
class HostNetworks:
    """This host's own networking settings, from the agent's configuration."""
    host: str
    underlay_mtu: int
    gwbridge: GwBridgeSpec
    default_bridge: LocalBridgeSpec

    @property
    def overlay_mtu(self) -> int:
        # VXLAN adds 50 bytes of headers: containers get the rest, so nothing fragments.
        return self.underlay_mtu - 50

    def bridge_for(self, network: Network) -> LocalBridgeSpec:
        """The kernel bridge of a local (driver bridge) network on this host."""
        if network.builtin:
            return self.default_bridge
        return LocalBridgeSpec(name=names.local_bridge(network.id), subnet=network.subnet,
                               gateway=network.gateway, mtu=self.underlay_mtu)


def needs_gwbridge(spec: ContainerSpec, networks: dict[str, Network]) -> bool:
    attached = [networks[n] for n in spec.networks if n in networks]
    return any(n.scope != "local" for n in attached) and not any(n.scope == "local" for n in attached)


def assign_ifnames(record: LocalContainer, spec: ContainerSpec, networks: dict[str, Network]) -> None:
    """Give every wanted interface a stable eth<N> (smallest free N), forget the rest."""
    wanted = list(spec.networks)
    if needs_gwbridge(spec, networks):
        wanted.append(GWBRIDGE_KEY)
    record.ifnames = {key: index for key, index in record.ifnames.items() if key in wanted}
    for key in wanted:
        if key not in record.ifnames:
            used = set(record.ifnames.values())
            record.ifnames[key] = next(i for i in range(len(used) + 1) if i not in used)


def interfaces(spec: ContainerSpec, networks: dict[str, Network], record: LocalContainer,
               host: HostNetworks) -> list[Interface]:
    """The veth pairs of a container in its own network namespace (mode "")."""
    container_ns = names.container_netns(host.host, spec.id)
    default_set = False
    result = []
    for attachment in spec.attachments:
        network = networks[attachment.network]
        index = record.ifnames[attachment.network]
        if network.scope == "local":
            bridge = host.bridge_for(network)
            gateway = None if default_set else bridge.gateway
            default_set = True
            result.append(Interface(
                container_netns=container_ns, ifname=names.container_ifname(index), peer_netns=None,
                peer_ifname=names.bridge_veth(spec.id, index), bridge=bridge.name,
                address=f"{attachment.ip}/{_prefixlen(bridge.subnet)}", mac=attachment.mac,
                mtu=bridge.mtu, default_gateway=gateway, hairpin=True))
        else:
            result.append(Interface(
                container_netns=container_ns, ifname=names.container_ifname(index),
                peer_netns=names.overlay_netns(host.host, network.vni),
                peer_ifname=names.overlay_veth(spec.id, index), bridge=names.BRIDGE,
                address=f"{attachment.ip}/{_prefixlen(network.subnet)}", mac=attachment.mac,
                mtu=host.overlay_mtu, default_gateway=None))
    if GWBRIDGE_KEY in record.ifnames and record.gw_ip:
        gw = host.gwbridge
        result.append(Interface(
            container_netns=container_ns, ifname=names.container_ifname(record.ifnames[GWBRIDGE_KEY]),
            peer_netns=None, peer_ifname=names.gw_veth(spec.id), bridge=gw.name,
            address=f"{record.gw_ip}/{_prefixlen(gw.subnet)}", mac=None, mtu=host.overlay_mtu,
            default_gateway=gw.gateway, isolated=True))
    return result


def local_attachment(spec: ContainerSpec, networks: dict[str, Network], host: HostNetworks):
    """(ip, bridge spec) of the first bridge network, or None."""
    for attachment in spec.attachments:
        network = networks.get(attachment.network)
        if network is not None and network.scope == "local":
            return attachment.ip, host.bridge_for(network)
    return None


def port_rules(spec: ContainerSpec, networks: dict[str, Network], record: LocalContainer,
               host: HostNetworks) -> list[PortRule]:
    """DNAT rules for a running container's published ports."""
    if not spec.ports:
        return []
    target = local_attachment(spec, networks, host)
    if target is not None:
        ip, bridge = target[0], target[1].name
    elif record.gw_ip:
        ip, bridge = record.gw_ip, host.gwbridge.name
    else:
        return []  # no way in (e.g. every network disconnected)
    return [PortRule(protocol=p.protocol, host_port=p.host_port, target_ip=ip, target_port=p.container_port,
                     bridge=bridge) for p in spec.ports]


def bridge_rules(host: HostNetworks, bridges: list[LocalBridgeSpec]) -> list[BridgeRules]:
    gw = host.gwbridge
    rules = [BridgeRules(name=gw.name, subnet=gw.subnet, gateway=gw.gateway, icc=False)]
    rules += [BridgeRules(name=b.name, subnet=b.subnet, gateway=b.gateway, icc=True) for b in bridges]
    return rules


def _prefixlen(subnet: str) -> int:
    return ipaddress.ip_network(subnet).prefixlen
