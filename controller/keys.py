"""Where every piece of vxmesh state lives in etcd.

All keys sit under one prefix (default ``/vxmesh/``) so several independent
installations, or tests, can share an etcd. Each kind of record has its
directory under the prefix and a fixed number of name parts after it, both
from the one table of kinds (proto/kinds.py)::

    {p}networks/<name>                  Network JSON
    {p}vnis/<vni>                       the network name holding this VNI
    {p}ipam/<network>/<ip>              {"container": name, "host": host, "id": id}: the
                                        address is taken (until the host confirms removal)
    {p}local-ipam/<network>/<host>/<ip> the same for a bridge network, whose addresses
                                        are per host (each host has its own bridge)
    {p}ports/<host>/<port>-<proto>      {"container": name, "host": host, "id": id}: a
                                        published host port is taken
    {p}hosts/<name>                     Host JSON (registered hosts)
    {p}alive/<name>                     HostAlive JSON: the host is in every table (written by the
                                        controllers' liveness rule, controller/liveness.py)
    {p}agents/<name>                    {"host": name, "controller": ..., "since": t}, bound to a
                                        lease: exists exactly while the host's agent is connected
    {p}reach/<name>                     Reachability JSON: which peers' VTEPs answer this host's
                                        probes, under the same lease as its agents/ key
    {p}requests/<id>                    {"id", "method", "name", "container_id", "at"}: what a
                                        client's request did, under a retention lease
    {p}resync/<name>                    ResyncRequest JSON: a controller asks this host's agent to
                                        report every status again
    {p}containers/<name>                ContainerSpec JSON (desired containers)
    {p}status/<name>                    ContainerStatus JSON (last agent report)
    {p}endpoints/<network>/<container>  Endpoint JSON: one MAC/IP -> VTEP table row
    {p}controllers/<name>               ControllerInfo JSON, bound to that controller's lease:
                                        what it listens on, the etcd cluster it uses
    {p}services/<name>                  ServiceSpec JSON (controller/services/ runs its tasks)
    {p}vips/<network>/<service>         ServiceVip JSON: a VIP and its backends (the leader writes it)
    {p}leaders/<role>                   the controller leading a role, bound to its lease

Names never contain "/" (see `proto.validate`), so a key splits back into
its parts unambiguously. Prefixes returned here end in "/" so that a prefix
read of network "blue" cannot match network "blue2".
"""
from __future__ import annotations

from proto.kinds import BY_DIRECTORY, BY_NAME


class Keys:
    def __init__(self, prefix: str = "/vxmesh/") -> None:
        if not prefix:
            raise ValueError("the etcd key prefix must not be empty")
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"

    def directory(self, kind: str, *parts: str) -> str:
        """The prefix of every key of `kind` whose leading name parts are `parts`."""
        return "".join([self.prefix, BY_NAME[kind].directory, "/", *(f"{part}/" for part in parts)])

    def key(self, kind: str, *parts: str) -> str:
        if len(parts) != len(BY_NAME[kind].parts):
            raise ValueError(f"a {kind} key has the name parts {BY_NAME[kind].parts}, not {parts}")
        return self.directory(kind, *parts[:-1]) + parts[-1]

    def networks(self) -> str:
        return self.directory("network")

    def network(self, name: str) -> str:
        return self.key("network", name)

    def vnis(self) -> str:
        return self.directory("vni")

    def vni(self, vni: int) -> str:
        return self.key("vni", str(vni))

    def ipam_all(self) -> str:
        return self.directory("ipam")

    def ipam_network(self, network: str) -> str:
        return self.directory("ipam", network)

    def ipam(self, network: str, ip: str) -> str:
        return self.key("ipam", network, ip)

    def local_ipam_all(self) -> str:
        return self.directory("local-ipam")

    def local_ipam_network(self, network: str) -> str:
        return self.directory("local-ipam", network)

    def local_ipam_host(self, network: str, host: str) -> str:
        return self.directory("local-ipam", network, host)

    def local_ipam(self, network: str, host: str, ip: str) -> str:
        return self.key("local-ipam", network, host, ip)

    def ports_all(self) -> str:
        return self.directory("port")

    def ports(self, host: str) -> str:
        return self.directory("port", host)

    def port(self, host: str, protocol: str, port: int) -> str:
        return self.key("port", host, f"{port}-{protocol}")

    def hosts(self) -> str:
        return self.directory("host")

    def host(self, name: str) -> str:
        return self.key("host", name)

    def alive_all(self) -> str:
        return self.directory("alive")

    def alive(self, host: str) -> str:
        return self.key("alive", host)

    def agents_all(self) -> str:
        return self.directory("agent")

    def agent(self, host: str) -> str:
        return self.key("agent", host)

    def reach_all(self) -> str:
        return self.directory("reach")

    def reach(self, reporter: str) -> str:
        return self.key("reach", reporter)

    def request(self, request_id: str) -> str:
        return self.key("request", request_id)

    def resync(self, host: str) -> str:
        return self.key("resync", host)

    def containers(self) -> str:
        return self.directory("container")

    def container(self, name: str) -> str:
        return self.key("container", name)

    def statuses(self) -> str:
        return self.directory("status")

    def status(self, name: str) -> str:
        return self.key("status", name)

    def endpoints_all(self) -> str:
        return self.directory("endpoint")

    def endpoints(self, network: str) -> str:
        return self.directory("endpoint", network)

    def endpoint(self, network: str, container: str) -> str:
        return self.key("endpoint", network, container)

    def controllers(self) -> str:
        return self.directory("controller")

    def controller(self, name: str) -> str:
        return self.key("controller", name)

    def services(self) -> str:
        return self.directory("service")

    def service(self, name: str) -> str:
        return self.key("service", name)

    def vips_all(self) -> str:
        return self.directory("vip")

    def vip(self, network: str, service: str) -> str:
        return self.key("vip", network, service)

    def leader(self, role: str) -> str:
        return self.key("leader", role)

    def parse(self, key: str) -> tuple[str, tuple[str, ...]]:
        """Split a key into its kind and name parts, e.g.
        ``/vxmesh/endpoints/blue/c1`` -> ``("endpoint", ("blue", "c1"))``.

        Raises ValueError for a key outside this layout, so a watcher never
        silently misroutes a key it does not understand.
        """
        if not key.startswith(self.prefix):
            raise ValueError(f"key {key!r} is not under the prefix {self.prefix!r}")
        directory, _, rest = key[len(self.prefix):].partition("/")
        kind = BY_DIRECTORY.get(directory)
        if kind is None:
            raise ValueError(f"key {key!r} is not a vxmesh key: unknown section {directory!r}")
        parts = tuple(rest.split("/"))
        if len(parts) != len(kind.parts) or not all(parts):
            raise ValueError(
                f"key {key!r} is malformed: a {kind.name} key has {len(kind.parts)} name part(s) after {directory}/"
            )
        return kind.name, parts
