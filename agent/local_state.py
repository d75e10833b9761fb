"""What this agent built for each container, kept on disk under /run/vxmesh/<host>/.

The record is written before any kernel object is made, so an agent that
dies half-way knows after its restart what to finish or tear down, even when
the controller has already forgotten the container. It holds the container's
spec, environment included: the directory is 0700 and each record 0600
(proto/private_files.py).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from proto.private_files import private_dir, write_private
from proto.records import ContainerSpec


@dataclass
class LocalContainer:
    spec: ContainerSpec
    gw_ip: str = ""                # this host's gwbridge address for it ("" = none)
    started_generation: int = -1   # the spec generation last started
    error: str = ""                # why the last start failed
    image_error: bool = False      # ... because its image could not be pulled
    # Interface index per attached network (eth<N>), kept so connect and
    # disconnect never rename the other interfaces; "@gwbridge" for the gwbridge.
    ifnames: dict[str, int] = field(default_factory=dict)
    # Its restart policy at work (agent/restart_policy.py): restarts so far, and
    # the back-off's current step (reset once a run lasted long enough).
    restart_count: int = 0
    backoff_step: int = 0

    def to_json(self) -> str:
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> "LocalContainer":
        data = json.loads(raw)
        data["spec"] = ContainerSpec.from_dict(data["spec"])
        return cls(**data)


class LocalState:
    def __init__(self, root: Path):
        self.root = private_dir(root)
        # The text of each record as last read or written: every reconcile
        # pass saves every record, and rewriting the unchanged ones was a
        # third of a pass's time with 30 containers. This agent is the
        # directory's only writer, and load_all refreshes it from the disk.
        self._on_disk: dict[str, str] = {}

    def load_all(self) -> dict[str, LocalContainer]:
        records = {}
        on_disk = {}
        for path in sorted(self.root.glob("*.json")):
            raw = path.read_text()
            record = LocalContainer.from_json(raw)
            records[record.spec.name] = record
            on_disk[record.spec.name] = raw
        self._on_disk = on_disk
        return records

    def save(self, record: LocalContainer) -> None:
        raw = record.to_json()
        if self._on_disk.get(record.spec.name) == raw:
            return
        # Whole: a crash leaves the old or the new record.
        write_private(self.root / f"{record.spec.name}.json", raw)
        self._on_disk[record.spec.name] = raw

    def delete(self, name: str) -> None:
        self._on_disk.pop(name, None)
        (self.root / f"{name}.json").unlink(missing_ok=True)
