"""The controller's in-memory mirror of etcd, indexed the way the streams read it.

etcd stays the only source of truth: the index is rebuilt from a range read
and kept current by one watch (see cache.py). Values are decoded once here,
so every agent stream shares the same record objects.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from controller.etcd import KV, Event
from controller.keys import Keys
from proto.kinds import BY_NAME
from proto.records import (MESH_LEG_PREFIX, ContainerSpec, ContainerStatus, ControllerInfo, Endpoint, Host,
                           HostAlive, Network, Reachability, Record, ServiceVip)


@dataclass(frozen=True)
class StateEvent:
    """An etcd event decoded: which kind of key, its path parts, new and old record."""
    key: str
    kind: str
    parts: tuple[str, ...]
    record: Record | None   # None when the key was deleted
    prev: Record | None


class Index:
    def __init__(self, keys: Keys):
        self.keys = keys
        self.networks: dict[str, Network] = {}
        self.hosts: dict[str, Host] = {}                 # key -> host
        self.alive: set[str] = set()                     # host names in every table
        self.alive_records: dict[str, HostAlive] = {}    # host name -> its alive/ record
        self.connected: set[str] = set()                 # hosts whose agent stream is open
        self.reach: dict[str, Reachability] = {}         # reporter -> its probes' finding
        self.controllers: dict[str, ControllerInfo] = {}  # key -> the controllers serving now
        self.statuses: dict[str, ContainerStatus] = {}   # container name -> status
        # Moves with every change to what each agent's snapshot shares with
        # every other (hosts, controllers, liveness): see wire_changes.py.
        self.cluster_version = 0
        self._containers: dict[str, dict[str, ContainerSpec]] = defaultdict(dict)  # host -> key -> spec
        self._endpoints: dict[str, dict[str, Endpoint]] = defaultdict(dict)        # network -> key -> ep
        # (network, host) -> key -> ep: a host going down or up touches its own
        # endpoints only, not a scan of every endpoint in each of its networks.
        self._endpoints_by_host: dict[tuple[str, str], dict[str, Endpoint]] = defaultdict(dict)
        self._vips: dict[str, dict[str, ServiceVip]] = defaultdict(dict)                # network -> key -> vip
        # What the services' reconciler acts on, by key (its records are not kept
        # here): with none of it, its pass has nothing to do.
        self._spec_names: set[str] = set()      # containers with a spec
        self._orphans: set[str] = set()         # containers with a status and no spec
        self._service_keys: set[str] = set()    # services/<name>
        self._task_keys: set[str] = set()       # containers/<name> of a service's tasks
        self._leg_keys: set[str] = set()        # endpoints/<network>/_mesh.<host>

    def containers_on(self, host: str) -> dict[str, ContainerSpec]:
        return self._containers.get(host, {})

    def endpoints_of(self, network: str) -> dict[str, Endpoint]:
        return self._endpoints.get(network, {})

    def has_orphan_statuses(self) -> bool:
        """Whether some container has a status but no spec: removed, and its host
        has not confirmed the teardown yet (its addresses are still held).
        Kept as changes come, not counted per call: every agent connecting asks."""
        return bool(self._orphans)

    def has_service_state(self) -> bool:
        """Whether anything the services' reconciler manages exists: a service, a
        task, a VIP or a routing-mesh leg (controller/services/reconciler.py)."""
        return bool(self._service_keys or self._task_keys or self._leg_keys or any(self._vips.values()))

    def vips_of(self, network: str) -> dict[str, ServiceVip]:
        return self._vips.get(network, {})

    def endpoints_on(self, network: str, host: str) -> dict[str, Endpoint]:
        return self._endpoints_by_host.get((network, host), {})

    def load(self, kvs: list[KV]) -> None:
        for kv in kvs:
            self._apply(kv.key, True, self._decode(kv), None)

    def apply(self, events: list[Event]) -> list[StateEvent]:
        decoded = []
        for ev in events:
            present = ev.kind == "put"
            record = self._decode(ev.kv) if present else None
            prev = self._decode(ev.prev) if ev.prev is not None else None
            state_event = self._apply(ev.kv.key, present, record, prev)
            if state_event is not None:
                decoded.append(state_event)
        return decoded

    def _parse(self, key: str) -> tuple[str, tuple[str, ...]] | None:
        try:
            return self.keys.parse(key)
        except ValueError:
            return None  # not a key of ours (e.g. written by hand): not indexed

    def _decode(self, kv: KV) -> Record | None:
        parsed = self._parse(kv.key)
        if parsed is None:
            return None
        kind, parts = BY_NAME[parsed[0]], parsed[1]
        if kind.record is None:
            return None  # a reservation: only its key matters here
        # The key names the record: its name parts fill the fields of the same
        # name the value leaves out (an alive/<host> written before it held the host).
        return kind.record.from_dict({**dict(zip(kind.parts, parts)), **json.loads(kv.value)})

    def _apply(self, key: str, present: bool, record: Record | None, prev: Record | None) -> StateEvent | None:
        parsed = self._parse(key)
        if parsed is None:
            return None
        kind, parts = parsed
        if kind in CLUSTER_KINDS:
            self.cluster_version += 1
        if kind == "network":
            _set(self.networks, parts[0], record)
        elif kind == "host":
            _set(self.hosts, key, record)
        elif kind == "alive":
            (self.alive.add if present else self.alive.discard)(parts[0])
            _set(self.alive_records, parts[0], record)
        elif kind == "agent":
            # The key exists while the agent's heartbeats come (controller/agent_leases.py).
            (self.connected.add if present else self.connected.discard)(parts[0])
        elif kind == "reach":
            _set(self.reach, parts[0], record)
        elif kind == "controller":
            _set(self.controllers, key, record)
        elif kind == "status":
            _set(self.statuses, parts[0], record)
            orphan = record is not None and parts[0] not in self._spec_names
            (self._orphans.add if orphan else self._orphans.discard)(parts[0])
        elif kind == "service":
            (self._service_keys.add if present else self._service_keys.discard)(key)
        elif kind == "container":
            (self._task_keys.add if present and record is not None and record.service_id
             else self._task_keys.discard)(key)
            (self._spec_names.add if present else self._spec_names.discard)(parts[0])
            orphan = not present and parts[0] in self.statuses
            (self._orphans.add if orphan else self._orphans.discard)(parts[0])
            spec = record or prev
            if spec is not None:
                _set(self._containers[spec.host], key, record)
            else:  # a delete whose old value etcd no longer had
                for specs in self._containers.values():
                    specs.pop(key, None)
        elif kind == "vip":
            _set(self._vips[parts[0]], key, record)
        elif kind == "endpoint":
            (self._leg_keys.add if present and parts[1].startswith(MESH_LEG_PREFIX) else self._leg_keys.discard)(key)
            old = self._endpoints[parts[0]].get(key)
            if old is not None:
                by_host = self._endpoints_by_host[(parts[0], old.host)]
                by_host.pop(key, None)
                if not by_host:
                    del self._endpoints_by_host[(parts[0], old.host)]
            if record is not None:
                self._endpoints_by_host[(parts[0], record.host)][key] = record
            _set(self._endpoints[parts[0]], key, record)
        return StateEvent(key, kind, parts, record, prev)


# The kinds every agent's snapshot holds alike (controller/view.py, `cluster_changes`).
CLUSTER_KINDS = frozenset({"host", "alive", "controller"})


def _set(table: dict, key, record) -> None:
    if record is None:
        table.pop(key, None)
    else:
        table[key] = record

