"""Hosts as the user API shows them (up/down, container count), from the controller's mirror.

`Store.list_hosts` reads every host, alive key and container spec from etcd
and decodes them all: fine for `host ls`, but `run` needs it on every call,
and with thousands of containers that read dominated the call. The state
cache already holds the same records decoded, so `run` asks it first.
"""
from __future__ import annotations

import dataclasses

from controller.index import Index
from proto.records import Host


def hosts_from_index(index: Index) -> dict[str, Host]:
    """name -> host with `state` and `containers` filled in, as Store.list_hosts fills them."""
    return {
        host.name: dataclasses.replace(host, state="up" if host.name in index.alive else "down",
                                       containers=len(index.containers_on(host.name)))
        for host in index.hosts.values()
    }
