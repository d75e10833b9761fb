"""The cluster's images: what `run` resolves, and `vxmesh image load|pull|push|ls|inspect|rm`.

Every image lives in the cluster's registry at the place
proto/cluster_registry.py gives its reference. `run` resolves a reference
there to the digest of its manifest before anything is stored, so a missing
image is refused at once and every start of the container pulls exactly
that image. Errors are one line naming the image and the reason:
`ImageError` (the image is missing or unusable), `NotFound` (`inspect`,
`rm`), `Unavailable` (the registry does not answer).
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from controller.images import archives
from controller.images.registry_api import RegistryApi, RegistryError, RegistryUnreachable
from controller.images.skopeo import Skopeo
from controller.run_options import RunImage
from proto import cluster_registry, image_ref
from proto.errors import FailedPrecondition, ImageError, InvalidArgument, NotFound, Unavailable
from proto.image_config import ImageConfig
from proto.image_ref import ImageRef

# An image id prefix must be this long to name an image (as Docker's shortest useful ones).
MIN_ID_PREFIX = 4
# Image configurations kept decoded, by their digest (see ClusterImages._find).
CONFIGS_KEPT = 256


@dataclass(frozen=True)
class ImageInfo:
    reference: ImageRef      # canonical, as the user named it
    digest: str              # of its manifest in the cluster's registry
    id: str                  # of its configuration
    size: int                # bytes of its layers as stored
    config: ImageConfig


class ClusterImages:
    def __init__(self, registry: str, api: RegistryApi, skopeo: Skopeo):
        self.registry = registry
        self.api = api
        self.skopeo = skopeo
        # A configuration blob is named by the digest of its content, so one read of
        # it serves every later `run` of the image: a request to the registry (a TLS
        # connection of its own) less on each. The manifest, which a tag moves, is
        # read every time.
        self._configs: dict[str, ImageConfig] = {}

    async def resolve(self, text: str) -> RunImage:
        """What `run IMAGE` will run: the manifest digest, id and exposed ports of IMAGE."""
        ref = image_ref.parse(text)
        info = await self._find(ref)
        if info is None:
            raise ImageError(f"cannot run image {ref.familiar}: it is not in the cluster's registry "
                             f"{self.registry} (`vxmesh image load` or `vxmesh image pull` puts it there)")
        check = info.config.healthcheck
        return RunImage(str(ref), info.digest, info.id, info.config.exposed_ports,
                        check.settings() if check is not None else None)

    async def load(self, archive: Path, shown: str) -> list[str]:
        """Every image of a `docker save` tarball or OCI archive, under each of its names."""
        lines = []
        for image in await asyncio.to_thread(archives.images_in, archive, shown):
            for ref in image.references:
                await self.skopeo.copy(image.source, self._location(ref),
                                       f"cannot load image {ref.familiar} from {shown}")
                lines.append(f"Loaded image: {ref.familiar}")
        return lines

    async def pull(self, text: str) -> list[str]:
        """Copy an image from its own registry into the cluster's."""
        ref = image_ref.parse(text)
        tagged = _tagged(ref, "pull")
        await self.skopeo.copy(f"docker://{ref.pull_source}", self._location(tagged),
                               f"cannot pull image {ref.familiar}", source_ref=ref)
        info = await self._find(tagged)
        if info is None:
            raise ImageError(f"image {ref.familiar}: copied, but the cluster's registry does not show it")
        return [f"Digest: {info.digest}", f"Status: Downloaded image for {tagged.familiar}", str(tagged)]

    async def push(self, text: str) -> list[str]:
        """Copy an image from the cluster's registry to the registry its reference names."""
        ref = image_ref.parse(text)
        tagged = _tagged(ref, "push")
        if await self._find(ref) is None:
            raise NotFound(f"no such image: {ref.familiar}")
        location = self._location(ref)
        await self.skopeo.copy(f"docker://{location}", tagged, f"cannot push image {ref.familiar}",
                               source_ref=location)
        return [f"The push refers to repository [{ref.name}]", f"Pushed {tagged.familiar}"]

    async def list(self) -> list[ImageInfo]:
        found = []
        for repository in await self._call(self.api.repositories(), "listing images"):
            if cluster_registry.reference(repository) is None:
                continue  # not vxmesh's
            for tag in await self._call(self.api.tags(repository), f"listing {repository}"):
                ref = cluster_registry.reference(repository, tag)
                info = await self._find(ref) if ref is not None else None
                if info is not None:
                    found.append(info)
        return sorted(found, key=lambda i: i.reference.familiar)

    async def inspect(self, text: str) -> list[ImageInfo]:
        """The image `text` names (a reference), or every reference of an image id (prefix)."""
        try:
            info = await self._find(image_ref.parse(text))
            if info is not None:
                return [info]
        except InvalidArgument:
            pass
        prefix = text.removeprefix("sha256:")
        if len(prefix) >= MIN_ID_PREFIX and all(c in "0123456789abcdef" for c in prefix):
            found = [i for i in await self.list() if i.id.removeprefix("sha256:").startswith(prefix)]
            if len({i.id for i in found}) > 1:
                raise InvalidArgument(f"image id prefix {text!r} is ambiguous: give more digits")
            if found:
                return found
        raise NotFound(f"no such image: {text}")

    async def remove(self, text: str, users: Mapping[str, list[str]]) -> list[str]:
        """Untag the image `text` names (every reference of an id); delete what is left untagged.
        `users`: the containers using each canonical reference, which keep it (as Docker refuses)."""
        lines = []
        for info in await self.inspect(text):
            ref = info.reference
            if not ref.tag:
                raise InvalidArgument(f"cannot remove {ref.familiar}: give NAME:TAG or an image id")
            if users.get(str(ref)):
                names = sorted(users[str(ref)])
                raise FailedPrecondition(
                    f"cannot remove image {ref.familiar}: {'container' if len(names) == 1 else 'containers'} "
                    f"{', '.join(repr(n) for n in names)} {'uses' if len(names) == 1 else 'use'} it")
            location = self._location(ref)
            repository = location.repository
            manifest = await self._call(self.api.manifest(repository, location.tag or location.digest), ref.familiar)
            if manifest is None:
                continue  # removed meanwhile
            # Deleting a manifest deletes every tag pointing to it: the others are written back.
            siblings = []
            for tag in await self._call(self.api.tags(repository), ref.familiar):
                if tag != location.tag:
                    other = await self._call(self.api.manifest(repository, tag), ref.familiar)
                    if other is not None and other.digest == manifest.digest:
                        siblings.append(tag)
            await self._call(self.api.delete_manifest(repository, manifest.digest), ref.familiar)
            for tag in siblings:
                await self._call(self.api.put_manifest(repository, tag, manifest), ref.familiar)
            lines.append(f"Untagged: {ref.familiar}")
            # As Docker: the image is deleted once no name is left for it.
            if not siblings and info.id not in {i.id for i in await self.list()}:
                lines.append(f"Deleted: {info.id}")
        return lines

    # -- helpers -------------------------------------------------------------------------

    def _location(self, ref: ImageRef) -> ImageRef:
        return cluster_registry.location(ref, self.registry)

    async def _find(self, ref: ImageRef) -> ImageInfo | None:
        location = self._location(ref)
        manifest = await self._call(self.api.manifest(location.repository, location.digest or location.tag),
                                    ref.familiar)
        if manifest is None:
            return None
        config = self._configs.get(manifest.config_digest)
        if config is None:
            document = await self._call(self.api.config(location.repository, manifest), ref.familiar)
            config = ImageConfig.from_image_json(document, ref.familiar)
            if len(self._configs) >= CONFIGS_KEPT:
                self._configs.pop(next(iter(self._configs)))   # the oldest read
            self._configs[manifest.config_digest] = config
        return ImageInfo(ref, manifest.digest, manifest.config_digest, manifest.layers_size, config)

    @staticmethod
    async def _call(call, what: str):
        try:
            return await call
        except RegistryUnreachable as e:
            raise Unavailable(str(e)) from None
        except RegistryError as e:
            raise ImageError(f"image {what}: {e}") from None


def _tagged(ref: ImageRef, action: str) -> ImageRef:
    """Where `image pull/push` copy to: NAME:TAG (a digest alone names no place)."""
    if not ref.tag:
        raise InvalidArgument(f"cannot {action} {ref.familiar}: give a tag (NAME:TAG); an image "
                              "named by its digest alone has no name to be kept under")
    return ImageRef(ref.registry, ref.repository, ref.tag)
