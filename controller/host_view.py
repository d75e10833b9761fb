"""Hosts as the user API shows them: up, agent down or down, with their container count.

The records in etcd hold neither (a host's state comes from its alive/<name>
and agents/<name> keys, controller/liveness.py; its count from the specs
placed on it), so they are filled in on read, by this
one function, from etcd (`Store.list_hosts`, for `host ls`) or from the
controller's mirror (`hosts_from_index`, for `run`, which needs it on every
call: with thousands of containers reading and decoding them all from etcd
dominated the call, and the state cache already holds them decoded).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from controller.index import Index
from controller.liveness import state_of
from proto.records import Host, HostAlive


def host_view(host: Host, alive: Mapping[str, HostAlive], connected: Collection[str], containers: int) -> Host:
    """A copy of `host` with `state` and `containers` filled in."""
    return dataclasses.replace(host, state=state_of(host.name, alive, connected), containers=containers)


def hosts_from_index(index: Index) -> dict[str, Host]:
    """name -> host as `host ls` shows it, from the mirror."""
    return {host.name: host_view(host, index.alive_records, index.connected, len(index.containers_on(host.name)))
            for host in index.hosts.values()}
