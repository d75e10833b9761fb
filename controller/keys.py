"""Where every piece of vxmesh state lives in etcd.

All keys sit under one prefix (default ``/vxmesh/``) so several independent
installations, or tests, can share an etcd. Values are JSON so ``etcdctl get
--prefix /vxmesh/`` is readable::

    {p}networks/<name>                  Network JSON
    {p}vnis/<vni>                       the network name holding this VNI
    {p}ipam/<network>/<ip>              {"container": name, "host": host, "id": id}: the
                                        address is taken (until the host confirms removal)
    {p}local-ipam/<network>/<host>/<ip> the same for a bridge network, whose addresses
                                        are per host (each host has its own bridge)
    {p}ports/<host>/<port>-<proto>      {"container": name, "host": host, "id": id}: a
                                        published host port is taken
    {p}hosts/<name>                     Host JSON (registered hosts)
    {p}alive/<name>                     {"controller": ..., "since": t}, bound to a lease:
                                        exists exactly while the host is connected
    {p}containers/<name>                ContainerSpec JSON (desired containers)
    {p}status/<name>                    ContainerStatus JSON (last agent report)
    {p}endpoints/<network>/<container>  Endpoint JSON: one MAC/IP -> VTEP table row

Names never contain "/" (see `ipam.validate_name`), so a key splits back into
its parts unambiguously. Prefixes returned here end in "/" so that a prefix
read of network "blue" cannot match network "blue2".
"""
from __future__ import annotations

# Directory name under the prefix -> (kind reported by parse, number of name parts).
_LAYOUT: dict[str, tuple[str, int]] = {
    "networks": ("network", 1),
    "vnis": ("vni", 1),
    "ipam": ("ipam", 2),
    "local-ipam": ("local-ipam", 3),
    "ports": ("port", 2),
    "hosts": ("host", 1),
    "alive": ("alive", 1),
    "containers": ("container", 1),
    "status": ("status", 1),
    "endpoints": ("endpoint", 2),
}

KINDS = tuple(kind for kind, _ in _LAYOUT.values())


class Keys:
    def __init__(self, prefix: str = "/vxmesh/") -> None:
        if not prefix:
            raise ValueError("the etcd key prefix must not be empty")
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"

    def _dir(self, name: str) -> str:
        return f"{self.prefix}{name}/"

    def networks(self) -> str:
        return self._dir("networks")

    def network(self, name: str) -> str:
        return self.networks() + name

    def vnis(self) -> str:
        return self._dir("vnis")

    def vni(self, vni: int) -> str:
        return f"{self.vnis()}{vni}"

    def ipam_all(self) -> str:
        return self._dir("ipam")

    def ipam_network(self, network: str) -> str:
        return f"{self.ipam_all()}{network}/"

    def ipam(self, network: str, ip: str) -> str:
        return self.ipam_network(network) + ip

    def local_ipam_all(self) -> str:
        return self._dir("local-ipam")

    def local_ipam_network(self, network: str) -> str:
        return f"{self.local_ipam_all()}{network}/"

    def local_ipam_host(self, network: str, host: str) -> str:
        return f"{self.local_ipam_network(network)}{host}/"

    def local_ipam(self, network: str, host: str, ip: str) -> str:
        return self.local_ipam_host(network, host) + ip

    def ports_all(self) -> str:
        return self._dir("ports")

    def ports(self, host: str) -> str:
        return f"{self.ports_all()}{host}/"

    def port(self, host: str, protocol: str, port: int) -> str:
        return f"{self.ports(host)}{port}-{protocol}"

    def hosts(self) -> str:
        return self._dir("hosts")

    def host(self, name: str) -> str:
        return self.hosts() + name

    def alive_all(self) -> str:
        return self._dir("alive")

    def alive(self, host: str) -> str:
        return self.alive_all() + host

    def containers(self) -> str:
        return self._dir("containers")

    def container(self, name: str) -> str:
        return self.containers() + name

    def statuses(self) -> str:
        return self._dir("status")

    def status(self, name: str) -> str:
        return self.statuses() + name

    def endpoints_all(self) -> str:
        return self._dir("endpoints")

    def endpoints(self, network: str) -> str:
        return f"{self.endpoints_all()}{network}/"

    def endpoint(self, network: str, container: str) -> str:
        return self.endpoints(network) + container

    def parse(self, key: str) -> tuple[str, tuple[str, ...]]:
        """Split a key into its kind and name parts, e.g.
        ``/vxmesh/endpoints/blue/c1`` -> ``("endpoint", ("blue", "c1"))``.

        Raises ValueError for a key outside this layout, so a watcher never
        silently misroutes a key it does not understand.
        """
        if not key.startswith(self.prefix):
            raise ValueError(f"key {key!r} is not under the prefix {self.prefix!r}")
        directory, _, rest = key[len(self.prefix):].partition("/")
        if directory not in _LAYOUT:
            raise ValueError(f"key {key!r} is not a vxmesh key: unknown section {directory!r}")
        kind, count = _LAYOUT[directory]
        parts = tuple(rest.split("/"))
        if len(parts) != count or not all(parts):
            raise ValueError(
                f"key {key!r} is malformed: a {kind} key has {count} name part(s) after {directory}/"
            )
        return kind, parts
