"""What an image archive holds, and under which names `image load` puts each image.

Two formats, told apart by their index file:
  - a `docker save` tarball: manifest.json lists the images, each with its
    RepoTags (`busybox:latest`); skopeo reads image N as `docker-archive:FILE:@N`;
  - an OCI archive (a tarred OCI layout, e.g. skopeo's or buildah's
    `oci-archive:`): index.json lists the manifests; an image's name is its
    `io.containerd.image.name` annotation, or its `org.opencontainers.image.ref.name`
    when that is a whole reference (a bare tag names no image); skopeo reads it
    as `oci-archive:FILE:REF.NAME`.
An image without a name cannot be loaded: a registry keeps images by name.
Plain synchronous I/O: the caller runs it in a thread.
"""
from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proto import image_ref
from proto.errors import ImageError, InvalidArgument
from proto.image_ref import ImageRef

DOCKER_INDEX = "manifest.json"
OCI_INDEX = "index.json"
CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"
MAX_INDEX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ArchivedImage:
    source: str                        # what skopeo copies from
    references: tuple[ImageRef, ...]   # what it is loaded as


def images_in(archive: Path, shown: str = "") -> list[ArchivedImage]:
    """The images of `archive` (`shown`: how to name it in errors, e.g. the user's file name)."""
    shown = shown or str(archive)
    try:
        with tarfile.open(archive) as tar:
            members = {member.name.removeprefix("./"): member for member in tar.getmembers()}
            if DOCKER_INDEX in members:
                return _docker(archive, shown, _read_json(tar, members[DOCKER_INDEX], shown))
            if OCI_INDEX in members:
                return _oci(archive, shown, _read_json(tar, members[OCI_INDEX], shown))
    except (tarfile.TarError, OSError) as e:
        raise ImageError(f"cannot read image archive {shown}: {e}") from None
    raise ImageError(f"{shown} is neither a `docker save` tarball ({DOCKER_INDEX}) nor an OCI "
                     f"archive ({OCI_INDEX})")


def _docker(archive: Path, shown: str, manifest: Any) -> list[ArchivedImage]:
    if not isinstance(manifest, list) or not manifest:
        raise ImageError(f"{shown}: {DOCKER_INDEX} lists no image")
    found = []
    for index, entry in enumerate(manifest):
        tags = entry.get("RepoTags") if isinstance(entry, dict) else None
        if not tags:
            raise ImageError(f"image {index} of {shown} has no name: `docker save NAME:TAG` names it")
        found.append(ArchivedImage(f"docker-archive:{archive}:@{index}",
                                   tuple(_reference(tag, shown) for tag in tags)))
    return found


def _oci(archive: Path, shown: str, index: Any) -> list[ArchivedImage]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not manifests:
        raise ImageError(f"{shown}: {OCI_INDEX} lists no image")
    found = []
    for number, descriptor in enumerate(manifests):
        annotations = descriptor.get("annotations") or {}
        ref_name = annotations.get(OCI_REF_NAME, "")
        name = annotations.get(CONTAINERD_NAME) or (ref_name if any(c in ref_name for c in "/:") else "")
        if not name or not ref_name:
            raise ImageError(f"image {number} of OCI archive {shown} has no name: give it a whole "
                             f"reference as {OCI_REF_NAME} (skopeo copy ... oci-archive:FILE:NAME:TAG)")
        found.append(ArchivedImage(f"oci-archive:{archive}:{ref_name}", (_reference(name, shown),)))
    return found


def _reference(name: str, shown: str) -> ImageRef:
    try:
        ref = image_ref.parse(name)
    except InvalidArgument as e:
        raise ImageError(f"{shown}: {e}") from None
    if ref.digest:
        raise ImageError(f"{shown}: image name {name!r} has a digest; a loaded image needs a tag")
    return ref


def _read_json(tar: tarfile.TarFile, member: tarfile.TarInfo, shown: str) -> Any:
    if member.size > MAX_INDEX_BYTES:
        raise ImageError(f"{shown}: {member.name} is larger than {MAX_INDEX_BYTES} bytes")
    data = tar.extractfile(member)
    if data is None:
        raise ImageError(f"{shown}: {member.name} is not a file")
    try:
        return json.loads(data.read())
    except ValueError as e:
        raise ImageError(f"{shown}: {member.name} is not JSON: {e}") from None
