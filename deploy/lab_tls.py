"""The namespace lab's certificates, made as `vxmesh certs` makes them.

`lab up` makes both CAs and every certificate the lab's daemons use in the
lab's state directory (<state>/tls, removed with the lab), named as `vxmesh
certs` names them: from the cluster CA agent-<host>.pem, controller-ctl.pem
(ctl<K> for controller K) and admin.pem; from the etcd CA (<state>/tls/etcd)
etcd-e<N>.pem for the members and controller-ctl.pem, the controller's
etcd client certificate. Each serves on its lab address.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cli import pki as certs


def make_certs(directory: Path, *, controllers: Iterable[tuple[str, str]], agents: Iterable[tuple[str, str]],
               etcd_members: Iterable[tuple[str, str]]) -> None:
    """Both CAs, an admin certificate, and one certificate per (name, address) of each kind."""
    certs.init(directory)
    certs.issue(directory, "admin")
    controllers = list(controllers)
    for kind, holders in (("controller", controllers), ("etcd-client", controllers), ("agent", agents),
                          ("etcd", etcd_members)):
        for name, address in holders:
            certs.issue(directory, kind, name, ips=[address])


def tls_paths(directory: Path, kind: str, name: str = certs.ADMIN_NAME) -> dict[str, str]:
    """{"ca", "cert", "key"}: the paths a config file or command line names."""
    files = certs.files(directory, kind, name)
    return {"ca": str(files.ca), "cert": str(files.cert), "key": str(files.key)}


def etcd_client_paths(directory: Path, name: str) -> dict[str, str]:
    """{"etcd-ca", "etcd-cert", "etcd-key"} of controller `name`'s config file."""
    return {f"etcd-{key}": path for key, path in tls_paths(directory, "etcd-client", name).items()}
