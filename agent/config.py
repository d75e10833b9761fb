"""The options of `vxmesh agent`: its config file and flags (proto/config_file.py reads them)."""
from __future__ import annotations

from collections.abc import Mapping

from proto.config_file import (
    Option,
    Schema,
    Value,
    both,
    host_name,
    host_port_list,
    ipv4_address,
    ipv4_subnet,
    nonempty_list,
    on_off,
    registry_or_empty,
    tls_options,
)

def dns_servers(value) -> str | None:
    """ADDRESS[:PORT] resolvers, each an IPv4 address."""
    for item in value:
        address, _, port = item.partition(":")
        problem = ipv4_address(address)
        if problem is not None:
            return problem
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            return f"invalid port in {item!r}"
    return None


AGENT = Schema("agent", (
    Option("name", str, None,
           "This host's name, unique in the cluster: an RFC 1123 label (lowercase letters, "
           "digits and '-', at most 63 characters). Names its namespaces and cgroups.", host_name),
    Option("controller", list, None,
           "Controller addresses (host:port); the agent moves to the next one when its "
           "stream breaks and resumes where it was.",
           both(nonempty_list, host_port_list)),
    Option("vtep-ip", str, None,
           "This host's underlay address: the VXLAN tunnel endpoint, on the interface "
           "whose MTU the overlay follows.", ipv4_address),
    Option("api", str, "",
           "Where to serve exec, logs and tables to the controller (host:port). "
           "Empty: VTEP_IP:7947."),
    Option("state-root", str, "/run/vxmesh",
           "Directory for per-host state: containers, their logs and network records. "
           "Keep it on tmpfs: it describes processes and namespaces that a reboot ends."),
    Option("gwbridge-subnet", str, "172.18.0.0/16",
           "Subnet of vxm_gwbridge, the egress (NAT) bridge of overlay containers "
           "(Docker's docker_gwbridge).", ipv4_subnet),
    Option("bridge-subnet", str, "172.17.0.0/16",
           "Subnet of this host's default 'bridge' network (Docker's docker0).", ipv4_subnet),
    Option("vtep-filter", str, "on",
           "'on': accept VXLAN (UDP 4789) only from the VTEPs of hosts currently in the "
           "cluster, dropping and counting the rest (nft table inet vxmesh_vtep, counter "
           "vxlan_rejected), and drop and count VXLAN from this host's containers, to the "
           "host or through it (counter vxlan_from_containers). 'off': accept it from "
           "anywhere, containers included, as plain VXLAN does.", on_off),
    Option("vtep-probes", str, "on",
           "'on': probe every peer's VTEP address over the underlay (ICMP echo, which the "
           "kernel answers while the agent is down) and report which answer, so the "
           "controllers keep a host whose agent restarts in the tables and withdraw one "
           "whose data plane is gone (controller/liveness.py). 'off': report nothing; "
           "this host then has no say on its peers' liveness.", on_off),
    Option("port-security", str, "on",
           "'on': every container port accepts only frames from the container's assigned MAC "
           "that are ARP or IPv4 from its own address, and delivers unicast only to that MAC, "
           "as Neutron's and Calico's port security: a container, even one given NET_ADMIN, "
           "cannot take over a neighbour's MAC or address or send from a forged one (nft "
           "tables bridge vxmesh_ports, a counter spoofed_<port> each). 'off': containers "
           "send what they like, as on Docker's bridge.", on_off),
    Option("registry", str, "",
           "The cluster's image registry, HOST:PORT (the controller's registry): every "
           "container's image is pulled from the cluster's copy there, over TLS verified "
           "with the ca below, presenting this agent's certificate (plain HTTP with "
           "insecure = true). Empty: this host cannot start containers.", registry_or_empty),
    Option("dns", list, [],
           "The resolvers (ADDRESS[:PORT]) the embedded DNS forwards the names it does not hold "
           "to, and the default bridge's containers get. Empty: the nameservers of this host's "
           "/etc/resolv.conf.", dns_servers),
    Option("plugin-socket", str, "/run/docker/plugins/vxmesh.sock",
           "Where to serve other container engines (root only): Docker's network and IPAM "
           "driver 'vxmesh' (Docker finds plug-ins in /run/docker/plugins), and vxmesh-cni for "
           "podman and other CNI runtimes (its config's 'socket'). Empty: no engines on this host."),
    Option("docker-api", str, "/run/docker.sock",
           "Docker's API socket on this host (dockerd -H unix://...): the agent reads a Docker "
           "container's name there (libnetwork gives its network driver none), so vxmesh's "
           "embedded DNS answers it on the network like a container's name. Empty, or no "
           "Docker there: Docker's containers are reached by address only."),
    *tls_options("agent"),
))


AGENT_API_PORT = 7947


def agent_api(values: Mapping[str, Value]) -> str:
    """The agent's API address: as configured, or its VTEP address on the default port."""
    return values["api"] or f"{values['vtep-ip']}:{AGENT_API_PORT}"
