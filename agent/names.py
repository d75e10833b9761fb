"""Every kernel object name the agent creates, in one place.

Names are derived from the host name, the VNI and the container id so that
several agents sharing one kernel (the lab runs each "host" in its own
network namespace, but namespace *names* live in one global /run/netns)
never collide, and so that everything one agent owns can be found again
after a crash by prefix.

Network namespaces (file names under /run/netns, no 15-char limit):
    vxm-<host>-                   prefix of every namespace of one host
    vxm-<host>-ov<vni>            one per overlay network: br0 + vx<vni>
    vxm-<host>-c<cid[:12]>        one per container

Interfaces (at most 15 characters, IFNAMSIZ - 1):
    br0                           bridge inside an overlay namespace
    vx<vni>                       VXLAN device inside an overlay namespace
                                  (vx16777215 = 10 chars at most)
    vxm_gwbridge                  per-host egress bridge in the host namespace
    vxmesh0                       the default "bridge" network (Docker's docker0)
    vxb<network id[:10]>          a user-defined bridge network, in the host namespace
    vb<cid[:10]><index>           host-side veth end on a local bridge for eth<index>
    ve<cid[:10]><index>           bridge-side veth end in the overlay
                                  namespace for the container's eth<index>
    gw<cid[:10]>                  bridge-side veth end on vxm_gwbridge in the
                                  host namespace (one per container)
    eth<index>                    container-side end, in the container netns
    mesh<vni>                     the host's routing-mesh leg into overlay <vni>, in
                                  the host namespace; meshb<vni> its end on br0

Veth pairs are created in one netlink request with each end placed straight
into its target namespace under its final name, so no temporary names exist
and a crash cannot leave a half-moved pair behind in the host namespace.

Container ids are truncated (12 characters for namespaces, 10 for interface
names); with Docker-style 64-hex ids a clash among one host's containers
would need two ids sharing their first 40 bits.
"""
from __future__ import annotations

from proto import validate

BRIDGE = "br0"
GWBRIDGE = "vxm_gwbridge"
DEFAULT_BRIDGE = "vxmesh0"
LOCAL_BRIDGE_PREFIX = "vxb"
# Id characters kept in names: 12 in namespace names (as Docker shows ids),
# 10 in interface names (what fits 15 characters with a prefix and an index).
NETNS_ID_CHARS = 12
IFNAME_ID_CHARS = 10


def _index(index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"invalid interface index {index!r}")
    return index


def netns_prefix(host: str) -> str:
    return f"vxm-{validate.host_name(host)}-"


def overlay_netns(host: str, vni: int) -> str:
    return f"{netns_prefix(host)}ov{validate.vni(vni)}"


def container_netns(host: str, container_id: str) -> str:
    cid = validate.object_id("container", container_id)
    return f"{netns_prefix(host)}c{cid[:NETNS_ID_CHARS]}"


def vxlan_ifname(vni: int) -> str:
    return validate.ifname(f"vx{validate.vni(vni)}")


def overlay_veth(container_id: str, index: int) -> str:
    """Bridge-side veth end in the overlay netns for the container's eth<index>."""
    cid = validate.object_id("container", container_id)
    return validate.ifname(f"ve{cid[:IFNAME_ID_CHARS]}{_index(index)}")


def bridge_veth(container_id: str, index: int) -> str:
    """Host-side veth end on a local bridge network for the container's eth<index>."""
    cid = validate.object_id("container", container_id)
    return validate.ifname(f"vb{cid[:IFNAME_ID_CHARS]}{_index(index)}")


def local_bridge(network_id: str) -> str:
    """The bridge of a user-defined bridge network, named after the network's id as
    Docker's br-<id> (the name may be reused by a new network; the id is not)."""
    nid = validate.object_id("network", network_id)
    return validate.ifname(f"{LOCAL_BRIDGE_PREFIX}{nid[:IFNAME_ID_CHARS]}")


def gw_veth(container_id: str) -> str:
    """Host-side veth end on the gwbridge for the container's egress interface."""
    cid = validate.object_id("container", container_id)
    return validate.ifname(f"gw{cid[:IFNAME_ID_CHARS]}")


def engine_handover(container_id: str) -> str:
    """An engine endpoint's container end, in the host's namespace until the engine
    moves it into its sandbox (Docker does, and renames it eth<N>)."""
    cid = validate.object_id("container", container_id)
    return validate.ifname(f"vxd{cid[:IFNAME_ID_CHARS]}")


def engine_gw_ifname(container_id: str) -> str:
    """An engine endpoint's gwbridge interface in the engine's namespace (several
    endpoints may share it, so each has its own name)."""
    cid = validate.object_id("container", container_id)
    return validate.ifname(f"vxg{cid[:IFNAME_ID_CHARS]}")


MESH_LEG_PATTERN = r"mesh[0-9]+"


def mesh_leg_ifname(vni: int) -> str:
    """The host's end of its routing-mesh leg into overlay network `vni`."""
    return validate.ifname(f"mesh{validate.vni(vni)}")


def mesh_leg_bridge_ifname(vni: int) -> str:
    """The leg's other end, on br0 in the overlay network's namespace."""
    return validate.ifname(f"meshb{validate.vni(vni)}")


def container_ifname(index: int) -> str:
    return validate.ifname(f"eth{_index(index)}")
