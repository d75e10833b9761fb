"""The embedded DNS kept in line with the view: the name table built from the
view when a lookup needs it, a listener in every running container's
namespace, and the files it reads.

The table is built at the first lookup after the view or a local
container's running state changed (so an answer never outlives a change it
was told of), never by the pass itself: with tens of thousands of endpoints
a build costs tens of milliseconds, and most passes are followed by no
lookup at all.

As in Docker, only running containers have names: this host's own by what
the containers converger found (`follow`, the table rebuilt at the next
lookup when one starts or stops), the other hosts' by their endpoints'
`stopped` mark (their hosts' reports, through the controller)."""
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
        self.resolver = Resolver(self.names, upstreams)
        self.listeners = Listeners(self.resolver)
        self.container_nameservers = container_nameservers   # for the default bridge's resolv.conf
        self._asks_on: dict[str, list[str]] = {}             # container name -> its user networks
        self._view: View | None = None
        self._running: set[str] = set()    # ids of this host's containers running now
        self._stale = False                # one of them started or stopped since the table was built
        self._built_at: tuple[int, float] | None = None   # the view's state the table was built from
        self.builds = 0                    # tables built, for tests: a pass alone builds none

    def refresh(self, view: View) -> None:
        """Follow the view (every pass, before containers change): the next lookup
        builds the names again if it changed."""
        self._view = view
        if (view.revision, view.updated_at) != self._built_at:
            self._stale = True
        local = view.containers()
        networks = view.networks()
        self._asks_on = {spec.name: [n for n in spec.networks if n in networks and not networks[n].builtin]
                         for spec in local.values()}

    def names(self) -> NameTable:
        """The table a lookup reads: rebuilt first when a local container started or
        stopped since, so its names come and go with it, not a pass later."""
        if self._stale:
            self._build()
        return self.table

    def follow(self, container_id: str, running: bool) -> None:
        """What the containers converger found: whether this host's container runs."""
        if (container_id in self._running) != running:
            if running:
                self._running.add(container_id)
            else:
                self._running.discard(container_id)
            self._stale = True

    def _build(self) -> None:
        self._stale = False
        view = self._view
        if view is None:
            return
        self.builds += 1
        self._built_at = (view.revision, view.updated_at)
        networks = view.networks()
        running = [spec for spec in view.containers().values() if spec.id in self._running]
        self.table = NameTable(container_records(networks, view.all_endpoints(), running, self.host)
                               + service_records(networks, view.all_vips()))

    async def serve(self, spec: ContainerSpec, networks: dict[str, Network]) -> None:
        """A listener in the container's own namespace, when it is on a user network."""
        if not uses_embedded_dns(spec, networks):
            self.listeners.close(spec.id)
            return
        name = spec.name
        await self.listeners.serve(spec.id, names.container_netns(self.host, spec.id),
                                   lambda: self._asks_on.get(name, []))

    def stop(self, container_id: str) -> None:
        self.follow(container_id, False)
        self.listeners.close(container_id)

    def files(self, owner: ContainerSpec, networks: dict[str, Network]) -> tuple[tuple[str, ...], str]:
        """/etc/hosts entries and /etc/resolv.conf for a container whose namespace is `owner`'s."""
        return hosts_entries(owner), resolv_conf(owner, networks, self.container_nameservers)
