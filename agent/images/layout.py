"""Reading the host's OCI image layout: which manifest a name points to, and its config.

skopeo writes the layout and umoci reads it to unpack; what is left for
Python is following three JSON documents (index.json -> manifest -> config)
by digest, checking each digest on the way. Plain synchronous I/O: the
store calls it in a thread.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proto.errors import ImageError

REF_NAME = "org.opencontainers.image.ref.name"
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


@dataclass(frozen=True)
class Manifest:
    digest: str          # of the manifest: what a registry calls the image's digest
    config_digest: str   # of the configuration: the image id, as Docker shows it
    layers_size: int     # bytes of its layers as stored (compressed)
    config: Any          # the decoded configuration document


def read_manifest(layout: Path, ref_name: str) -> Manifest | None:
    """The manifest `ref_name` names in the layout, or None if it names none."""
    index = _read_json(layout / "index.json", "the layout's index.json")
    if index is None:
        return None
    for descriptor in index.get("manifests", []):
        if descriptor.get("annotations", {}).get(REF_NAME) != ref_name:
            continue
        if descriptor.get("mediaType") not in MANIFEST_TYPES:
            raise ImageError(f"{ref_name} in {layout} is a {descriptor.get('mediaType')}, "
                             "not a single-platform image manifest")
        manifest = json.loads(read_blob(layout, descriptor["digest"]))
        config = manifest.get("config", {})
        return Manifest(
            digest=descriptor["digest"],
            config_digest=config["digest"],
            layers_size=sum(int(layer.get("size", 0)) for layer in manifest.get("layers", [])),
            config=json.loads(read_blob(layout, config["digest"])),
        )
    return None


def read_blob(layout: Path, digest: str) -> bytes:
    """A blob's bytes, checked against its digest (a corrupt store must not run)."""
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or len(hex_digest) != 64 or not all(
            c in "0123456789abcdef" for c in hex_digest):
        raise ImageError(f"unsupported digest {digest!r} in {layout}")
    path = layout / "blobs" / algorithm / hex_digest
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"blob {digest} is missing from {layout}") from None
    if hashlib.sha256(data).hexdigest() != hex_digest:
        raise ImageError(f"blob {path} does not match its digest {digest}: the store is corrupt")
    return data


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ImageError(f"{what} ({path}) is not JSON: {e}") from None
