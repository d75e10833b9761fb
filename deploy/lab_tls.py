"""The namespace lab's certificates, made as `vxmesh certs` makes them.

`lab up` makes a CA and every certificate the lab's daemons use in the lab's
state directory (<state>/tls, removed with the lab), named as `vxmesh certs`
names them: agent-<host>.pem, controller-ctl.pem (ctl<K> for controller K),
etcd-e<N>.pem and admin.pem, each with the lab address it serves on.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cli import pki as certs


def make_certs(directory: Path, *, controllers: Iterable[tuple[str, str]], agents: Iterable[tuple[str, str]],
               etcd_members: Iterable[tuple[str, str]]) -> None:
    """A CA, an admin certificate, and one certificate per (name, address) of each role."""
    certs.init_ca(directory)
    certs.issue(directory, "admin")
    for role, holders in (("controller", controllers), ("agent", agents), ("etcd", etcd_members)):
        for name, address in holders:
            certs.issue(directory, role, name, ips=[address])


def tls_paths(directory: Path, role: str, name: str = certs.ADMIN_NAME) -> dict[str, str]:
    """{"ca", "cert", "key"}: the paths a config file or command line names."""
    cert, key = certs.file_names(role, name)
    return {"ca": str(directory / certs.CA_FILE), "cert": str(directory / cert), "key": str(directory / key)}
