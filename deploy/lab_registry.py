"""The namespace lab's image registry: Debian's docker-registry in a namespace of its own on the fabric.

    P-reg   10.231.0.10:5000   docker-registry, TLS; clients need a certificate from the lab's CA

It runs as on a deployed controller node (deploy/provision.sh
--run-registry): the unit's command line, a config file rendered by
deploy/registry_config.py, a certificate from the cluster CA for its
address, and the same client-certificate check. Its images live in the
lab's state directory and go with the lab.
"""
from __future__ import annotations

from pathlib import Path

from cli import pki
from deploy import units
from deploy.registry_config import REGISTRY_PORT, RegistryConfig, RegistryTls, render_registry

REGISTRY_IP = "10.231.0.10"   # between the etcd members (.3-.9) and the hosts (.11-)
NODE = "reg"
ROLE = "registry"
# A deployed registry serves with its controller node's certificate; the lab's
# registry has a node of its own, so it gets a controller certificate for its address.
CERT_ROLE, CERT_NAME = "controller", "registry"
ADDRESS = f"{REGISTRY_IP}:{REGISTRY_PORT}"


def make_cert(tls_dir: Path) -> None:
    pki.issue(tls_dir, CERT_ROLE, CERT_NAME, ips=[REGISTRY_IP])


def write_config(path: Path, tls_dir: Path, data_dir: Path, header: str) -> None:
    held = pki.files(tls_dir, CERT_ROLE, CERT_NAME)
    tls = RegistryTls(str(held.cert), str(held.key), str(held.ca))
    path.write_text(render_registry(RegistryConfig(ADDRESS, str(data_dir), tls), header))


def argv(config: Path) -> list[str]:
    """The unit's own program: Debian's /usr/bin/docker-registry, as on a deployed host."""
    return units.exec_start(units.REGISTRY_UNIT).with_paths(config)
