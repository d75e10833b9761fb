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

Veth pairs are created in one netlink request with each end placed straight
into its target namespace under its final name, so no temporary names exist
and a crash cannot leave a half-moved pair behind in the host namespace.

Container ids are truncated (12 characters for namespaces, 10 for interface
names); with Docker-style 64-hex ids a clash among one host's containers
would need two ids sharing their first 40 bits.
"""
from __future__ import annotations

import re

HOST_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
# Container ids end up in file names (/run/netns) and interface names, so
# anything that could be a path separator or whitespace is refused.
CONTAINER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

IFNAME_MAX = 15
VNI_MIN = 1
VNI_MAX = (1 << 24) - 1

BRIDGE = "br0"
GWBRIDGE = "vxm_gwbridge"
DEFAULT_BRIDGE = "vxmesh0"
LOCAL_BRIDGE_PREFIX = "vxb"


def validate_host_name(name: str) -> str:
    """Return `name` if it is an allowed host name, else raise ValueError."""
    if not isinstance(name, str) or not HOST_NAME_RE.match(name):
        raise ValueError(
            f"invalid host name {name!r}: must match {HOST_NAME_RE.pattern}"
        )
    return name


def validate_container_id(container_id: str) -> str:
    if not isinstance(container_id, str) or not CONTAINER_ID_RE.match(
        container_id
    ):
        raise ValueError(
            f"invalid container id {container_id!r}: "
            f"must match {CONTAINER_ID_RE.pattern}"
        )
    return container_id


def validate_vni(vni: int) -> int:
    if not isinstance(vni, int) or isinstance(vni, bool):
        raise ValueError(f"invalid VNI {vni!r}: must be an integer")
    if not VNI_MIN <= vni <= VNI_MAX:
        raise ValueError(
            f"invalid VNI {vni}: must be in {VNI_MIN}..{VNI_MAX}"
        )
    return vni


def check_ifname(name: str) -> str:
    """Return `name` if the kernel accepts it as an interface name."""
    if not name or len(name) > IFNAME_MAX:
        raise ValueError(
            f"interface name {name!r} is {len(name)} characters; "
            f"Linux allows 1..{IFNAME_MAX}"
        )
    if name in (".", "..") or any(c in name for c in "/: \t\n"):
        raise ValueError(f"interface name {name!r} contains '/', ':' or space")
    return name


def netns_prefix(host: str) -> str:
    return f"vxm-{validate_host_name(host)}-"


def overlay_netns(host: str, vni: int) -> str:
    return f"{netns_prefix(host)}ov{validate_vni(vni)}"


def container_netns(host: str, container_id: str) -> str:
    cid = validate_container_id(container_id)
    return f"{netns_prefix(host)}c{cid[:12]}"


def vxlan_ifname(vni: int) -> str:
    return check_ifname(f"vx{validate_vni(vni)}")


def overlay_veth(container_id: str, index: int) -> str:
    """Bridge-side veth end in the overlay netns for the container's eth<index>."""
    cid = validate_container_id(container_id)
    if not isinstance(index, int) or index < 0:
        raise ValueError(f"invalid interface index {index!r}")
    return check_ifname(f"ve{cid[:10]}{index}")


def bridge_veth(container_id: str, index: int) -> str:
    """Host-side veth end on a local bridge network for the container's eth<index>."""
    cid = validate_container_id(container_id)
    if not isinstance(index, int) or index < 0:
        raise ValueError(f"invalid interface index {index!r}")
    return check_ifname(f"vb{cid[:10]}{index}")


def local_bridge(network_id: str) -> str:
    """The bridge of a user-defined bridge network, named after the network's id as
    Docker's br-<id> (the name may be reused by a new network; the id is not)."""
    if not re.fullmatch(r"[0-9a-f]{10,}", network_id or ""):
        raise ValueError(f"invalid network id {network_id!r}")
    return check_ifname(f"{LOCAL_BRIDGE_PREFIX}{network_id[:10]}")


def gw_veth(container_id: str) -> str:
    """Host-side veth end on the gwbridge for the container's egress interface."""
    cid = validate_container_id(container_id)
    return check_ifname(f"gw{cid[:10]}")


def container_ifname(index: int) -> str:
    if not isinstance(index, int) or index < 0:
        raise ValueError(f"invalid interface index {index!r}")
    return check_ifname(f"eth{index}")
