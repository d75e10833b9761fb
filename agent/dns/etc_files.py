"""A container's /etc/hosts entries and /etc/resolv.conf, as Docker writes them.

On a user network the container asks the embedded DNS (127.0.0.11, with
ndots:0 as Docker); on the default bridge only, with --network host or none,
it gets the host's resolvers (without loopback ones, which the container
cannot reach). /etc/hosts names the container's own addresses with its host
name. `--network container:NAME` shares NAME's files: the caller passes NAME's spec.
"""
from __future__ import annotations

from agent.dns.listeners import ADDRESS
from proto.records import ContainerSpec, Network

EMBEDDED = f"nameserver {ADDRESS}\noptions ndots:0\n"


def uses_embedded_dns(spec: ContainerSpec, networks: dict[str, Network]) -> bool:
    """Whether the container is on a user network (not only the default bridge)."""
    return any(n in networks and not networks[n].builtin for n in spec.networks)


def resolv_conf(spec: ContainerSpec, networks: dict[str, Network], host_nameservers: list[str]) -> str:
    if uses_embedded_dns(spec, networks):
        return EMBEDDED
    return "".join(f"nameserver {server}\n" for server in host_nameservers)


def hosts_entries(spec: ContainerSpec) -> tuple[str, ...]:
    hostname = spec.hostname or spec.name
    return tuple(f"{a.ip}\t{hostname}" for a in spec.attachments)
