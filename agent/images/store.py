"""The per-host image store: pull, list, inspect, remove; unpacked root filesystems by image id.

Layout under `root` (one per host, e.g. <state root>/<host>/images):
  oci/              an OCI image layout, written by skopeo: every pulled image,
                    blobs shared between images; names in it are tokens
                    (sha256 of the canonical reference), as a layout's names
                    cannot hold a reference's ':' and '@'
  refs/<token>.json which reference each token stands for
  rootfs/<id hex>/  the image unpacked by umoci (whiteouts applied), never
                    written again: the read-only lower layer of its containers
  tmp/              unpacks in progress, renamed into rootfs/ when complete

Every operation holds one lock: skopeo rewrites oci/index.json in place, so
a reader must not run beside a writer. Pulls of one host are serialised.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from agent.images import layout
from agent.images.image import Image
from agent.images.registry import RegistryAccess
from proto import image_ref, tools
from proto.errors import ImageError, InvalidArgument, NotFound
from proto.image_config import ImageConfig
from proto.image_ref import ImageRef
from proto.tools import ToolError

UNPACK_TIMEOUT = 600.0
LOCAL_TIMEOUT = 120.0
# An id prefix must be this long to name an image, as Docker's shortest useful ones.
MIN_ID_PREFIX = 4


class ImageStore:
    def __init__(self, root: Path, registries: RegistryAccess = RegistryAccess()):
        self.root = Path(root)
        if ":" in str(self.root) or not self.root.is_absolute():
            # skopeo and umoci read "PATH:NAME": a ':' in PATH would split it.
            raise InvalidArgument(f"image store {self.root}: it must be an absolute path without ':'")
        self.registries = registries
        self.layout = self.root / "oci"
        self._refs = self.root / "refs"
        self._rootfs = self.root / "rootfs"
        self._tmp = self.root / "tmp"
        self._lock = asyncio.Lock()

    # -- the operations ----------------------------------------------------------

    async def pull(self, reference: str) -> Image:
        """Fetch `reference` from its registry (again, if present: a tag may have moved)."""
        ref = image_ref.parse(reference)
        async with self._lock:
            await asyncio.to_thread(self._make_dirs)
            token = _token(ref)
            try:
                source = self.registries.source(ref)
                argv = [*self.registries.network_prefix(), tools.binary("skopeo"),
                        "--command-timeout", f"{int(self.registries.timeout)}s", "copy", "--quiet",
                        *self.registries.source_flags(source), f"docker://{source.pull_source}",
                        f"oci:{self.layout}:{token}"]
                await tools.run(argv, timeout=self.registries.timeout + 30)
            except ToolError as e:
                raise ImageError(f"cannot pull image {ref.familiar}: {e}") from None
            await asyncio.to_thread(self._write_ref, token, ref)
            return await self._ready(token, ref)

    async def ensure(self, reference: str) -> Image:
        """The image, pulled only if the store does not have it (what `run` does, as Docker)."""
        ref = image_ref.parse(reference)
        async with self._lock:
            if await asyncio.to_thread(self._refs_file(_token(ref)).exists):
                return await self._ready(_token(ref), ref)
        return await self.pull(reference)

    async def inspect(self, name: str) -> Image:
        """The image `name` names (a reference or an id prefix); NotFound if none."""
        async with self._lock:
            matches = await asyncio.to_thread(self._resolve, name)
            token, ref = matches[0]
            return await self._ready(token, ref)

    async def list(self) -> list[Image]:
        async with self._lock:
            records = await asyncio.to_thread(self._records)
            images = []
            for token, ref in records.items():
                image = await asyncio.to_thread(self._read, token, ref)
                if image is not None:
                    images.append(image)
            return sorted(images, key=lambda i: i.reference)

    async def remove(self, name: str, in_use: Mapping[str, str] | None = None) -> list[str]:
        """Untag `name` (a reference, or an id prefix: all its references); delete images left untagged.

        `in_use` maps image ids to the name of a container using them: an
        image a container uses keeps its last reference (as Docker refuses).
        Returns Docker's lines: "Untagged: REF", "Deleted: ID".
        """
        in_use = in_use or {}
        async with self._lock:
            return await asyncio.to_thread(self._remove, name, in_use)

    async def prune(self, in_use: Mapping[str, str] | None = None) -> list[str]:
        """Delete unpacked images no reference names and no container uses (e.g. after a tag moved)."""
        in_use = in_use or {}
        async with self._lock:
            return await asyncio.to_thread(self._prune, set(in_use))

    # -- helpers (blocking ones run in threads) --------------------------------------

    async def _ready(self, token: str, ref: ImageRef) -> Image:
        """The image with its rootfs unpacked."""
        image = await asyncio.to_thread(self._read, token, ref)
        if image is None:
            raise ImageError(f"image {ref.familiar}: the store lost its manifest; pull it again")
        if not await asyncio.to_thread(image.rootfs.is_dir):
            await self._unpack(token, image)
        return image

    async def _unpack(self, token: str, image: Image) -> None:
        staging = self._tmp / f"{image.rootfs.name}.{secrets.token_hex(4)}"
        try:
            await tools.run([tools.binary("umoci"), "raw", "unpack", "--image",
                                f"{self.layout}:{token}", str(staging)], timeout=UNPACK_TIMEOUT)
            await asyncio.to_thread(os.replace, staging, image.rootfs)
        except ToolError as e:
            raise ImageError(f"cannot unpack image {image_ref.parse(image.reference).familiar}: {e}") \
                from None
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _make_dirs(self) -> None:
        for directory in (self._refs, self._rootfs, self._tmp):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _refs_file(self, token: str) -> Path:
        return self._refs / f"{token}.json"

    def _write_ref(self, token: str, ref: ImageRef) -> None:
        path = self._refs_file(token)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"reference": str(ref)}))
        os.replace(tmp, path)

    def _records(self) -> dict[str, ImageRef]:
        """token -> reference, of every reference the store holds."""
        records = {}
        try:
            files = sorted(self._refs.glob("*.json"))
        except FileNotFoundError:
            return {}
        for path in files:
            try:
                records[path.stem] = image_ref.parse(json.loads(path.read_text())["reference"])
            except (ValueError, KeyError) as e:
                raise ImageError(f"corrupt image record {path}: {e}") from None
        return records

    def _read(self, token: str, ref: ImageRef) -> Image | None:
        manifest = layout.read_manifest(self.layout, token)
        if manifest is None:
            return None
        config = ImageConfig.from_image_json(manifest.config, ref.familiar)
        return Image(reference=str(ref), id=manifest.config_digest, digest=manifest.digest,
                     config=config, rootfs=self._rootfs / manifest.config_digest.partition(":")[2],
                     size=manifest.layers_size)

    def _resolve(self, name: str) -> list[tuple[str, ImageRef]]:
        """The (token, reference) pairs `name` names: one reference, or every reference of an id."""
        records = self._records()
        try:
            token = _token(image_ref.parse(name))
            if token in records:
                return [(token, records[token])]
        except InvalidArgument:
            pass
        prefix = name.removeprefix("sha256:")
        if len(prefix) >= MIN_ID_PREFIX and all(c in "0123456789abcdef" for c in prefix):
            ids = {token: image.id for token, ref in records.items()
                   if (image := self._read(token, ref)) is not None}
            found = [(token, records[token]) for token, image_id in ids.items()
                     if image_id.removeprefix("sha256:").startswith(prefix)]
            if len({ids[token] for token, _ in found}) > 1:
                raise InvalidArgument(f"image id prefix {name!r} is ambiguous: give more digits")
            if found:
                return found
        raise NotFound(f"no such image: {name}")

    def _remove(self, name: str, in_use: Mapping[str, str]) -> list[str]:
        targets = self._resolve(name)
        records = self._records()
        ids = {token: image.id for token, ref in records.items()
               if (image := self._read(token, ref)) is not None}
        doomed_tokens = {token for token, _ in targets}
        orphaned = {ids[t] for t in doomed_tokens if t in ids} - {
            image_id for token, image_id in ids.items() if token not in doomed_tokens}
        for image_id in sorted(orphaned):
            if image_id in in_use:
                raise ImageError(f"cannot remove image {name}: container {in_use[image_id]!r} "
                                 f"uses it ({image_id[7:19]})")
        lines = []
        for token, ref in targets:
            self._untag(token)
            self._refs_file(token).unlink(missing_ok=True)
            lines.append(f"Untagged: {ref.familiar}")
        for image_id in sorted(orphaned):
            shutil.rmtree(self._rootfs / image_id.partition(":")[2], ignore_errors=True)
            lines.append(f"Deleted: {image_id}")
        self._collect_garbage()
        return lines

    def _prune(self, in_use: set[str]) -> list[str]:
        records = self._records()
        named = {image.id.partition(":")[2] for token, ref in records.items()
                 if (image := self._read(token, ref)) is not None}
        kept = named | {image_id.partition(":")[2] for image_id in in_use}
        deleted = []
        if self._rootfs.is_dir():
            for entry in sorted(self._rootfs.iterdir()):
                if entry.name not in kept:
                    shutil.rmtree(entry, ignore_errors=True)
                    deleted.append(f"Deleted: sha256:{entry.name}")
        self._collect_garbage()
        return deleted

    def _untag(self, token: str) -> None:
        if layout.read_manifest(self.layout, token) is None:
            return
        _run_sync(["umoci", "rm", "--image", f"{self.layout}:{token}"],
                  f"removing {token} from {self.layout}")

    def _collect_garbage(self) -> None:
        """Blobs no name in the layout reaches any more go (umoci gc)."""
        if (self.layout / "index.json").exists():
            _run_sync(["umoci", "gc", "--layout", str(self.layout)],
                      f"collecting unused blobs of {self.layout}")


def _token(ref: ImageRef) -> str:
    return hashlib.sha256(str(ref).encode()).hexdigest()


def _run_sync(argv: list[str], what: str) -> None:
    """A short local tool run from a worker thread (the store's lock is held meanwhile)."""
    try:
        result = subprocess.run([tools.binary(argv[0]), *argv[1:]], capture_output=True,
                                timeout=LOCAL_TIMEOUT)
    except ToolError as e:
        raise ImageError(f"{what}: {e}") from None
    except subprocess.TimeoutExpired:
        raise ImageError(f"{what}: {argv[0]} did not finish in {LOCAL_TIMEOUT:g}s") from None
    if result.returncode != 0:
        raise ImageError(f"{what}: {tools.reason(result.stderr) or result.returncode}")
