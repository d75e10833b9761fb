"""Which interfaces a container should have, and where its published ports lead.

Pure planning, no kernel calls: the containers converger turns the plan
into veths (agent.kernel.veth) and the host firewall converger into
nftables rules (agent.kernel.firewall). What an attachment to one network
gives is its driver's answer (agent/drivers/); the rules across a
container's attachments are Docker's, kept here in one place:
- each attached network is one interface, eth<N>; N is chosen when the
  network is first attached and kept (stored in the local record), so
  `network connect`/`disconnect` never renames the others;
- the default route goes through the first attachment whose driver may
  carry it (a bridge network); a container with none whose driver asks for
  it (an overlay) gets an extra interface on the gwbridge for its egress
  (Docker's docker_gwbridge), its MAC derived from its address there as
  every container MAC is (port security knows it before the link exists);
- a published port is DNAT'ed to the address on that default-route network.

An engine's endpoint (Docker's, a CNI runtime's) is one interface in the
engine's namespace, named as the engine asked, once the engine has joined
it, and one on the gwbridge for its egress; the namespace is the engine's,
and other endpoints may share it: its gwbridge interface (vxg<id>) sets
the default route only where there is none. Docker's namespace does not
exist yet when it joins: the container end waits in the host's namespace
(names.engine_handover) for Docker to move it in, and is known by the name
Docker gave it once the namespace is named here.
"""
from __future__ import annotations

import dataclasses

from agent import names
from agent.drivers import driver_of
from agent.drivers.base import PortTarget
from agent.host_networks import HostNetworks
from agent.kernel.firewall import PortRule
from agent.kernel.veth import Interface
from agent.local_state import LocalContainer
from proto.addresses import mac_for_ip, prefixlen
from proto.records import ContainerSpec, Network

# The key of the gwbridge interface in LocalContainer.ifnames (no network
# name can contain "@").
GWBRIDGE_KEY = "@gwbridge"


def needs_gwbridge(spec: ContainerSpec, networks: dict[str, Network]) -> bool:
    # An --internal network is no way out: it neither asks for the gwbridge nor routes.
    drivers = [driver_of(networks[n]) for n in spec.networks if n in networks and not networks[n].internal]
    return any(d.needs_gwbridge for d in drivers) and not any(d.carries_default_route for d in drivers)


def routes(network: Network) -> bool:
    """Whether an attachment to `network` may carry the container's default route."""
    return driver_of(network).carries_default_route and not network.internal


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
    """The veth pairs of a container that attaches to networks (in its own network namespace)."""
    if spec.engine:
        return engine_interfaces(spec, networks, record, host)
    default_set = False
    result = []
    for attachment in spec.attachments:
        network = networks[attachment.network]
        driver = driver_of(network)
        default_route = routes(network) and not default_set
        default_set = default_set or routes(network)
        result.append(driver.interface(spec.id, record.ifnames[attachment.network], attachment, network,
                                       host, default_route))
    if GWBRIDGE_KEY in record.ifnames and record.gw_ip:
        gw = host.gwbridge
        result.append(Interface(
            container_netns=names.container_netns(host.host, spec.id),
            ifname=names.container_ifname(record.ifnames[GWBRIDGE_KEY]),
            peer_netns=None, peer_ifname=names.gw_veth(spec.id), bridge=gw.name,
            address=f"{record.gw_ip}/{prefixlen(gw.subnet)}", mac=mac_for_ip(record.gw_ip),
            mtu=host.overlay_mtu,
            default_gateway=gw.gateway, isolated=True))
    return result


def engine_interfaces(spec: ContainerSpec, networks: dict[str, Network], record: LocalContainer,
                      host: HostNetworks) -> list[Interface]:
    """An engine's endpoint: its one interface while joined, under the engine's name
    for it in the engine's namespace, or waiting in the host's for the engine."""
    if not spec.sandbox:
        return []
    if spec.interface:
        where, ifname = names.container_netns(host.host, spec.id), spec.interface
    else:
        where, ifname = None, names.engine_handover(spec.id)
    result = []
    for attachment in spec.attachments:
        network = networks[attachment.network]
        interface = driver_of(network).interface(spec.id, record.ifnames[attachment.network], attachment,
                                                 network, host, False)
        result.append(dataclasses.replace(interface, container_netns=where, ifname=ifname,
                                          default_gateway=None, handover=where is None))
    if spec.interface and GWBRIDGE_KEY in record.ifnames and record.gw_ip:
        # Its way out, as a native container's, once the engine's namespace is named here.
        gw = host.gwbridge
        result.append(Interface(
            container_netns=where, ifname=names.engine_gw_ifname(spec.id), peer_netns=None,
            peer_ifname=names.gw_veth(spec.id), bridge=gw.name,
            address=f"{record.gw_ip}/{prefixlen(gw.subnet)}", mac=mac_for_ip(record.gw_ip),
            mtu=host.overlay_mtu, default_gateway=gw.gateway, isolated=True, default_if_none=True))
    return result


def port_target(spec: ContainerSpec, networks: dict[str, Network], record: LocalContainer,
                host: HostNetworks) -> PortTarget | None:
    """Where the container's published ports lead: its default-route network, else
    its gwbridge address; None when it has neither (every network disconnected)."""
    for attachment in spec.attachments:
        network = networks.get(attachment.network)
        if network is not None and routes(network):
            return driver_of(network).port_target(attachment, network, host)
    if record.gw_ip:
        return PortTarget(ip=record.gw_ip, bridge=host.gwbridge.name)
    return None


def port_rules(spec: ContainerSpec, networks: dict[str, Network], record: LocalContainer,
               host: HostNetworks) -> list[PortRule]:
    """DNAT rules for a running container's published ports."""
    if not spec.ports:
        return []
    target = port_target(spec, networks, record, host)
    if target is None:
        return []
    return [PortRule(protocol=p.protocol, host_port=p.host_port, target_ip=target.ip,
                     target_port=p.container_port, bridge=target.bridge) for p in spec.ports]
