"""The host's nftables ruleset: NAT and isolation of every bridge containers sit
on, their published ports, and the control-plane guards (agent/guards.py)."""
from __future__ import annotations

from collections.abc import Iterable

from agent import container_network as plan
from agent import drivers
from agent.host_networks import HostNetworks
from agent.kernel import firewall, gwbridge
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.firewall import BridgeRules, Guard, HostRules, MeshRule
from agent.local_state import LocalContainer
from proto.records import Network


class HostFirewall:
    def __init__(self, host: HostNetworks, guards: tuple[Guard, ...]):
        self.host = host
        self.guards = guards  # control-plane ports the containers must not reach, from the config
        self._applied: HostRules | None = None

    async def converge(self, networks: dict[str, Network], published: Iterable[LocalContainer],
                       cluster_guards: Iterable[Guard] = (), mesh: Iterable[MeshRule] = ()) -> None:
        """`published`: the running containers with interfaces of their own, whose ports lead in;
        `cluster_guards`: the control plane the view knows of, on top of the configured one;
        `mesh`: the routing mesh's ports (agent/convergers/mesh_legs.py)."""
        ports = [rule for record in published
                 for rule in plan.port_rules(record.spec, networks, record, self.host)]
        bridges = self._bridge_rules(drivers.host_bridges(networks.values(), self.host))
        guards = tuple(sorted({*self.guards, *cluster_guards}, key=lambda g: (g.address, g.port)))
        rules = HostRules(bridges=tuple(bridges), ports=tuple(ports), guards=guards, mesh=tuple(mesh))
        if rules != self._applied:
            await firewall.apply(rules)
            self._applied = rules

    def forget(self) -> None:
        self._applied = None

    def _bridge_rules(self, bridges: list[LocalBridgeSpec]) -> list[BridgeRules]:
        rules = [gwbridge.firewall_rules(self.host.gwbridge)]
        rules += [BridgeRules(name=b.name, subnet=b.subnet, gateway=b.gateway, icc=True) for b in bridges]
        return rules
