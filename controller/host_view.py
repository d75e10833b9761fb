"""Hosts as the user API shows them: up while their lease lives, with their container count.

The records in etcd hold neither (a host's state is its alive/<name> key,
its count the specs placed on it), so they are filled in on read, by this
one function, from etcd (`Store.list_hosts`, for `host ls`) or from the
controller's mirror (`hosts_from_index`, for `run`, which needs it on every
call: with thousands of containers reading and decoding them all from etcd
dominated the call, and the state cache already holds them decoded).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Container

from controller.index import Index
from proto.records import Host


def host_view(host: Host, alive: Container[str], containers: int) -> Host:
    """A copy of `host` with `state` and `containers` filled in."""
    return dataclasses.replace(host, state="up" if host.name in alive else "down", containers=containers)


def hosts_from_index(index: Index) -> dict[str, Host]:
    """name -> host as `host ls` shows it, from the mirror."""
    return {host.name: host_view(host, index.alive, len(index.containers_on(host.name)))
            for host in index.hosts.values()}
