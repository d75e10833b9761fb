"""How this host reaches image registries: which CA to trust, which registries speak plain HTTP.

A cluster's registry is reached over TLS with the cluster CA (`ca_dir`: a
directory of `*.crt` CA certificates, as skopeo's --src-cert-dir reads it;
`client.cert`/`client.key` there are sent as a client certificate). A test
registry on loopback may speak plain HTTP: its host[:port] goes in `insecure`.
With a `cluster` registry, every image is pulled from the cluster's copy of
it there (proto/cluster_registry.py), never from the registry its reference
names.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proto import cluster_registry
from proto.image_ref import ImageRef

PULL_TIMEOUT = 600.0


@dataclass(frozen=True)
class RegistryAccess:
    ca_dir: Path | None = None
    insecure: frozenset[str] = frozenset()   # registries reached over HTTP / unverified TLS
    # The named network namespace (under /run/netns) to reach registries from;
    # "" = the agent's own. For an agent whose host network is not its own
    # namespace, and for tests whose registry lives in a namespace of its own.
    netns: str = ""
    timeout: float = PULL_TIMEOUT
    cluster: str = ""          # HOST:PORT of the cluster's registry; "" = each reference's own

    def source(self, ref: ImageRef) -> ImageRef:
        """Where `ref` is pulled from."""
        return cluster_registry.location(ref, self.cluster) if self.cluster else ref

    def source_flags(self, ref: ImageRef) -> list[str]:
        """skopeo copy's options for reading `ref` from its registry."""
        if ref.registry in self.insecure:
            return ["--src-tls-verify=false"]
        flags = ["--src-tls-verify=true"]
        if self.ca_dir is not None:
            flags.append(f"--src-cert-dir={self.ca_dir}")
        return flags

    def network_prefix(self) -> list[str]:
        """What runs a tool in the namespace registries are reached from."""
        return ["ip", "netns", "exec", self.netns] if self.netns else []

