"""Where the cluster's registry keeps an image: one repository per reference, under `vxmesh/`.

The cluster's registry (the `registry` option of the controller and the
agents) is the cluster's image store, as a Docker host's local store is
Docker's: `vxmesh run busybox` runs the `busybox` the cluster holds, and
`image load`, `image pull`, `image ls` work on it. A reference still means
what it means in Docker (`busybox` is `docker.io/library/busybox:latest`),
so images of different registries never share a name; the cluster's copy
of REGISTRY/REPOSITORY:TAG lives at

    <cluster registry>/vxmesh/<REGISTRY>/<REPOSITORY>:<TAG>
    e.g. 10.231.0.10:5000/vxmesh/docker.io/library/busybox:latest

A registry's port becomes part of the path component (`localhost:5000` ->
`localhost_5000`): a host name holds no `_`, so the mapping reads back. The
cluster registry's repositories outside `vxmesh/` are not vxmesh's images
(`image pull` can copy one in, as from any registry).

Standard library only: the CLI, the controller and the agents agree on it.
"""
from __future__ import annotations

from proto import image_ref
from proto.errors import InvalidArgument
from proto.image_ref import ImageRef

NAMESPACE = "vxmesh"
# What a registry accepts as a repository name (the distribution spec's practical limit).
REPOSITORY_MAX = 255


def check_registry(address: object, what: str = "registry") -> str:
    """`HOST[:PORT]` of a registry, as a reference would name it; InvalidArgument otherwise."""
    if not isinstance(address, str) or not address:
        raise InvalidArgument(f"invalid {what} {address!r}: give HOST[:PORT], e.g. 10.0.0.2:5000")
    try:
        parsed = image_ref.parse(f"{address}/probe")
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid {what} {address!r}: {e}") from None
    if parsed.registry != address or address.lower() != address:
        raise InvalidArgument(f"invalid {what} {address!r}: give a lowercase HOST:PORT, a name "
                              "with a dot, or localhost (e.g. 10.0.0.2:5000)")
    return address


def location(ref: ImageRef, registry: str) -> ImageRef:
    """Where the cluster's registry at `registry` keeps its copy of `ref` (tag and digest kept)."""
    if ref.registry.startswith("["):
        raise InvalidArgument(f"image {ref}: a registry named by an IPv6 address cannot be held "
                              "in the cluster's registry")
    repository = f"{NAMESPACE}/{ref.registry.replace(':', '_')}/{ref.repository}"
    if len(repository) > REPOSITORY_MAX:
        raise InvalidArgument(f"image {ref.familiar}: its name in the cluster's registry, {repository}, "
                              f"is longer than {REPOSITORY_MAX} characters")
    return ImageRef(registry, repository, ref.tag, ref.digest)


def reference(repository: str, tag: str = "", digest: str = "") -> ImageRef | None:
    """The reference a repository of the cluster's registry holds, or None if it is not vxmesh's."""
    prefix, _, rest = repository.partition("/")
    source, _, path = rest.partition("/")
    if prefix != NAMESPACE or not source or not path:
        return None
    text = f"{source.replace('_', ':')}/{path}"
    text += f":{tag}" if tag else ""
    text += f"@{digest}" if digest else ""
    try:
        ref = image_ref.parse(text)
    except InvalidArgument:
        return None
    # Only names location() writes: the path must read back to itself.
    return ref if location(ref, "x").repository == repository else None
