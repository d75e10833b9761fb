"""The config file of the cluster's image registry: Debian's `docker-registry` (distribution 2.8).

    /etc/vxmesh/registry.yml, read by `docker-registry serve FILE` (deploy/systemd/vxmesh-registry.service)

The registry listens on one address, serves TLS with a certificate from the
cluster CA and asks every client for one too (`clientcas`: the CA), so only
the cluster's controllers, agents and admins reach its images, and it
keeps deletion on: `vxmesh image rm` deletes manifests. Without TLS (an
insecure cluster) it speaks plain HTTP to anyone who reaches the address.
Standard library only: the provisioning script renders it first thing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from proto.config_file import comment_lines

REGISTRY_PORT = 5000
DATA_DIR = "/var/lib/vxmesh-registry"     # the StateDirectory= of vxmesh-registry.service
# Where systemd hands the unit its certificate and key (LoadCredential=, read as root).
CREDENTIALS = "/run/credentials/vxmesh-registry.service"


@dataclass(frozen=True)
class RegistryTls:
    certificate: str
    key: str
    client_ca: str          # the cluster CA: clients must present a certificate it signed


@dataclass(frozen=True)
class RegistryConfig:
    listen: str             # ADDRESS:PORT
    data_dir: str = DATA_DIR
    tls: RegistryTls | None = None


def render_registry(cfg: RegistryConfig, header: str) -> str:
    """docker-registry's YAML (JSON values are YAML), every setting explained."""
    out = comment_lines(header) + [
        "#",
        "# Read by `docker-registry serve FILE` (deploy/systemd/vxmesh-registry.service).",
        "# Reference: https://distribution.github.io/distribution/about/configuration/",
        "version: 0.1",
        "",
        *comment_lines("The journal gets the registry's own log; one line per request would drown it."),
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "",
        *comment_lines("Images on this host's disk. Deleting is on: `vxmesh image rm` deletes manifests "
                       "(`docker-registry garbage-collect FILE`, run with the registry stopped, frees "
                       "their layers)."),
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {json.dumps(cfg.data_dir)}",
        "  delete:",
        "    enabled: true",
        "",
        *comment_lines("The one address the registry listens on, and its TLS: a certificate from the "
                       "cluster CA, and clients must present one too." if cfg.tls else
                       "The one address the registry listens on: plain HTTP (an insecure cluster)."),
        "http:",
        f"  addr: {json.dumps(cfg.listen)}",
    ]
    if cfg.tls is not None:
        out += [
            "  tls:",
            f"    certificate: {json.dumps(cfg.tls.certificate)}",
            f"    key: {json.dumps(cfg.tls.key)}",
            "    clientcas:",
            f"      - {json.dumps(cfg.tls.client_ca)}",
        ]
    return "\n".join(out) + "\n"
