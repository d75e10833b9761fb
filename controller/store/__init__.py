"""Every vxmesh state change, each as one etcd transaction.

etcd is the only source of truth and several controllers may share it, so
nothing here trusts what it read: each change is a transaction guarded by
compares on what it read, retried by the one policy in transaction.py.
Errors the user should see are `UserError`s (see proto/errors.py),
including `Unavailable` when etcd is down.

The modules hold one subject each: networks.py, hosts.py, containers.py,
removal.py (a container's two-step removal), services.py (services;
their tasks are containers, written under a leader's fence.py), allocations.py (addresses
and host ports) and controllers.py (each controller's record of itself). `Store` is the one object the API and the agent link hold:
it builds the parts on one etcd and key prefix and offers their operations
under the names those callers use.
"""
from __future__ import annotations

import os
import socket

from controller.etcd import Etcd
from controller.keys import Keys
from controller.store.containers import Containers
from controller.store.engines import EngineEndpoints
from controller.store.controllers import Controllers
from controller.store.hosts import Hosts
from controller.store.networks import Networks
from proto.addresses import DEFAULT_ADDRESS_POOLS
from controller.store.records import Records
from controller.store.removal import Removal
from controller.store.requests import Requests
from controller.store.services import Services


class Store:
    def __init__(self, etcd: Etcd, prefix: str = "/vxmesh/", *, controller_id: str | None = None,
                 address_pools: tuple[str, ...] = DEFAULT_ADDRESS_POOLS) -> None:
        self.etcd = etcd
        self.keys = Keys(prefix)
        self.controller_id = controller_id or f"{socket.gethostname()}:{os.getpid()}"
        records = Records(etcd, self.keys)
        self.requests = Requests(records)
        self.networks = Networks(records, self.requests, address_pools)
        self.hosts = Hosts(records, self.controller_id)
        self.containers = Containers(records, self.requests)
        self.engines = EngineEndpoints(records)
        self.removal = Removal(records, self.requests)
        self.controllers = Controllers(records)
        self.services = Services(records)

        self.create_network = self.networks.create
        self.remove_network = self.networks.remove
        self.get_network = self.networks.get
        self.list_networks = self.networks.list_all
        self.network_endpoints = self.networks.endpoints
        self.ensure_builtin_networks = self.networks.ensure_builtin

        self.register_host = self.hosts.register
        self.get_host = self.hosts.get
        self.list_hosts = self.hosts.list_all
        self.mark_alive = self.hosts.mark_alive
        self.grant_lease = self.hosts.grant_lease
        self.mark_connected = self.hosts.mark_connected
        self.mark_connected_many = self.hosts.mark_connected_many
        self.mark_gone = self.hosts.mark_gone
        self.keep_alive = self.hosts.keep_alive
        self.mark_down = self.hosts.mark_down
        self.settle = self.hosts.settle
        self.put_reach = self.hosts.put_reach
        self.ask_resync = self.hosts.ask_resync

        self.create_container = self.containers.create
        self.connect = self.containers.connect
        self.disconnect = self.containers.disconnect
        self.get_container = self.containers.get
        self.list_containers = self.containers.list_all
        self.set_desired = self.containers.set_desired
        self.put_status = self.containers.put_status

        self.delete_container = self.removal.delete
        self.request_done = self.requests.get
        self.made_by = self.containers.made_by
        self.release_container = self.removal.release
        self.pending_releases = self.removal.pending
