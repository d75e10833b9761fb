"""What each hop of the overlay costs: the path built up one kernel object at a time.

Between two lab hosts (their own network namespaces, made by the benchmark's
lab), beside the overlay the agents built, four paths of the same kind:
  underlay       host to host, the baseline
  + vxlan        a VXLAN device on each host holding the address: encapsulation
  + bridge       the VXLAN device on a bridge, the address on the bridge
  + veth         the address on a veth pair whose other end is on the bridge
and the overlay itself (container to container) adds what remains: the
container's and the overlay's namespaces, and their firewall rules. A ping
over each, interleaved, gives each hop's share of the round trip.

The devices carry the `vxps` prefix and a UDP port of their own (not the
overlay's), so they never meet the agents' objects; they are deleted at the
end, and the lab's namespaces go with the lab in any case.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from deploy.topology import Node
from tests.benchmarks.commands import sh

VNI = 4242
PORT = 4790
VXLAN, BRIDGE, VETH, VETH_PEER = "vxpsx", "vxpsb", "vxpsv", "vxpsp"
SUBNET = "10.250.77"
STEPS = ("+ vxlan", "+ bridge", "+ veth")


def _ip(netns: str, *args: str) -> None:
    sh(*Node(netns).argv("ip", *args))


@contextlib.contextmanager
def ladder(hosts: list[tuple[str, str]]) -> Iterator[Ladder]:
    """hosts: (netns, underlay address) of two lab hosts."""
    built = Ladder(hosts)
    try:
        yield built
    finally:
        built.remove()


class Ladder:
    def __init__(self, hosts: list[tuple[str, str]]):
        self.hosts = hosts
        self.step = ""

    @property
    def client(self) -> str:
        return self.hosts[0][0]

    @property
    def peer_address(self) -> str:
        return f"{SUBNET}.2"

    def build(self, step: str) -> None:
        """Make `step` the path between the hosts (from scratch: a few ms of iproute2)."""
        self.remove()
        for index, (netns, underlay) in enumerate(self.hosts):
            other = self.hosts[1 - index][1]
            address = f"{SUBNET}.{index + 1}/24"
            _ip(netns, "link", "add", VXLAN, "type", "vxlan", "id", str(VNI), "local", underlay,
                "remote", other, "dstport", str(PORT))
            # The same MTU as a container's: the underlay's less the 50 bytes of encapsulation.
            _ip(netns, "link", "set", VXLAN, "mtu", "1450", "up")
            holder = VXLAN
            if step in ("+ bridge", "+ veth"):
                _ip(netns, "link", "add", BRIDGE, "mtu", "1450", "type", "bridge")
                _ip(netns, "link", "set", VXLAN, "master", BRIDGE)
                _ip(netns, "link", "set", BRIDGE, "up")
                holder = BRIDGE
            if step == "+ veth":
                _ip(netns, "link", "add", VETH, "mtu", "1450", "type", "veth", "peer", "name", VETH_PEER,
                    "mtu", "1450")
                _ip(netns, "link", "set", VETH_PEER, "master", BRIDGE, "up")
                _ip(netns, "link", "set", VETH, "up")
                holder = VETH
            _ip(netns, "addr", "add", address, "dev", holder)
        self.step = step

    def remove(self) -> None:
        for netns, _ in self.hosts:
            for link in (VETH, BRIDGE, VXLAN):
                sh(*Node(netns).argv("ip", "link", "del", link), check=False)
        self.step = ""
