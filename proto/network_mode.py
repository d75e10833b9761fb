"""What a container's `--network` means, parsed once into a value.

Docker's `--network` takes network names, or one of three modes that
replace the container's own interfaces: `host` (the host's namespace),
`none` (a namespace with only `lo`) and `container:NAME` (NAME's
namespace). The CLI, the controller and the agent all need to tell them
apart; they ask a `NetworkMode`, never the raw strings.

A container spec stores the mode as text (`ContainerSpec.network_mode`:
"", "host", "none" or "container:NAME") and its networks as attachments;
`NetworkMode.of(spec)` rebuilds the value from those.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from proto import validate
from proto.errors import InvalidArgument

NETWORKS = "networks"   # attach to the listed networks, each an interface of the container's own
HOST = "host"
NONE = "none"
CONTAINER = "container"

# Docker's network when none is given.
DEFAULT_NETWORK = "bridge"
_CONTAINER_PREFIX = "container:"


@dataclass(frozen=True)
class NetworkMode:
    kind: str                       # NETWORKS, HOST, NONE or CONTAINER
    networks: tuple[str, ...] = ()  # for NETWORKS, in the order given
    container: str = ""             # for CONTAINER: whose namespace to share

    @classmethod
    def parse(cls, values: Iterable[str]) -> NetworkMode:
        """The `--network` values of a run request: none given is the default bridge."""
        values = list(values)
        if not values:
            return cls(NETWORKS, (DEFAULT_NETWORK,))
        special = [v for v in values if v in (HOST, NONE) or v.startswith(_CONTAINER_PREFIX)]
        if special:
            if len(values) > 1:
                raise InvalidArgument(
                    f"--network {special[0]} cannot be combined with other networks ({', '.join(values)})")
            return cls.from_text(special[0])
        for value in values:
            validate.name("network", value)
            if values.count(value) > 1:
                raise InvalidArgument(f"network {value!r} is listed twice")
        return cls(NETWORKS, tuple(values))

    @classmethod
    def from_text(cls, text: str, networks: Iterable[str] = ()) -> NetworkMode:
        """From a spec's stored mode ("" means its `networks`)."""
        if not text:
            return cls(NETWORKS, tuple(networks))
        if text in (HOST, NONE):
            return cls(text)
        if text.startswith(_CONTAINER_PREFIX):
            return cls(CONTAINER, container=validate.name("container", text[len(_CONTAINER_PREFIX):]))
        raise InvalidArgument(f"invalid network mode {text!r}: use host, none or container:NAME")

    @classmethod
    def of(cls, spec) -> NetworkMode:
        """The mode of a ContainerSpec (proto/records.py)."""
        return cls.from_text(spec.network_mode, (a.network for a in spec.attachments))

    @property
    def text(self) -> str:
        """As a spec stores it: "" for networks, else host, none or container:NAME."""
        if self.kind == NETWORKS:
            return ""
        if self.kind == CONTAINER:
            return _CONTAINER_PREFIX + self.container
        return self.kind

    def __str__(self) -> str:
        return ",".join(self.networks) if self.kind == NETWORKS else self.text

    @property
    def attaches(self) -> bool:
        """Whether the container gets interfaces of its own, one per network."""
        return self.kind == NETWORKS

    @property
    def own_namespace(self) -> bool:
        """Whether the container gets a network namespace of its own (networks or none)."""
        return self.kind in (NETWORKS, NONE)

    @property
    def shares_container(self) -> bool:
        return self.kind == CONTAINER
