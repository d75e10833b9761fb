"""The embedded DNS kept in line with the view: the name table rebuilt on every
pass (so an answer never outlives the container by more than one pass), a
listener in every running container's namespace, and the files it reads."""
from __future__ import annotations

from agent import names
from agent.dns.etc_files import hosts_entries, resolv_conf, uses_embedded_dns
from agent.dns.listeners import Listeners
from agent.dns.names import NameTable, container_records, service_records
from agent.dns.resolver import Resolver
from agent.view import View
from proto.records import ContainerSpec, Network


class EmbeddedDns:
    def __init__(self, host: str, upstreams: list[tuple[str, int]], container_nameservers: list[str]) -> None:
        self.host = host
        self.table = NameTable()
        self.resolver = Resolver(lambda: self.table, upstreams)
        self.listeners = Listeners(self.resolver)
        self.container_nameservers = container_nameservers   # for the default bridge's resolv.conf
        self._asks_on: dict[str, list[str]] = {}             # container name -> its user networks

    def refresh(self, view: View) -> None:
        """Rebuild the names from the view (every pass, before containers change)."""
        networks = view.networks()
        local = view.containers()
        self.table = NameTable(container_records(networks, view.all_endpoints(), local.values(), self.host)
                               + service_records(networks, view.all_vips()))
        self._asks_on = {spec.name: [n for n in spec.networks if n in networks and not networks[n].builtin]
                         for spec in local.values()}

    async def serve(self, spec: ContainerSpec, networks: dict[str, Network]) -> None:
        """A listener in the container's own namespace, when it is on a user network."""
        if not uses_embedded_dns(spec, networks):
            self.listeners.close(spec.id)
            return
        name = spec.name
        await self.listeners.serve(spec.id, names.container_netns(self.host, spec.id),
                                   lambda: self._asks_on.get(name, []))

    def stop(self, container_id: str) -> None:
        self.listeners.close(container_id)

    def files(self, owner: ContainerSpec, networks: dict[str, Network]) -> tuple[tuple[str, ...], str]:
        """/etc/hosts entries and /etc/resolv.conf for a container whose namespace is `owner`'s."""
        return hosts_entries(owner), resolv_conf(owner, networks, self.container_nameservers)
