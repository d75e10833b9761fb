"""The images this host's containers run: pulled before a start, dropped once no container uses them.

A pull may take minutes for a large image; the reconcile loop must not
stall meanwhile (tables, other containers, stops). So a pull runs as a task
of its own: a start waits for it a moment (an image already here, or a
small one, is ready at once), and otherwise the container simply is not
started in this pass, and the loop is woken when the pull ends.

Images are named by the pinned reference of a container spec (reference and
manifest digest, as `run` resolved it), so a tag moved in the registry never
changes what an existing container runs, and an image nobody on this host
uses any more is removed from the store (`rm` leaves nothing behind).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from agent.images.image import Image
from agent.images.store import ImageStore
from proto import image_ref
from proto.errors import ImageError, NotFound, UserError

log = logging.getLogger(__name__)

# How long a start waits for its image before leaving the pull to the background.
PULL_WAIT = 2.0


class ContainerImages:
    def __init__(self, store: ImageStore, host: str, wake: Callable[[], None]):
        self.store = store
        self.host = host
        self._wake = wake
        self._pulls: dict[str, asyncio.Task[Image]] = {}

    async def get(self, reference: str) -> Image | None:
        """The image, in the store; None while it is still being pulled (the loop is
        woken when the pull ends). A failed pull raises ImageError, once: the next
        call pulls again."""
        if not self.store.registries.cluster:
            raise ImageError(f"cannot pull image {reference}: host {self.host} has no image "
                             "registry (agent option registry)")
        task = self._pulls.get(reference)
        if task is None:
            task = asyncio.create_task(self._pull(reference), name=f"pull {reference}")
            task.add_done_callback(lambda _: self._wake())
            self._pulls[reference] = task
        done, _ = await asyncio.wait({task}, timeout=PULL_WAIT)
        if not done:
            return None
        del self._pulls[reference]
        return task.result()

    async def _pull(self, reference: str) -> Image:
        try:
            return await self.store.ensure(reference)
        except UserError as err:  # an unusable reference reads as any other image error
            raise ImageError(str(err)) from None

    async def drop_unused(self, used: Iterable[str]) -> None:
        """Remove every image of the store no reference in `used` names (and no pull needs)."""
        keep = {_canonical(r) for r in [*used, *self._pulls]}
        for image in await self.store.list():
            if image.reference in keep:
                continue
            with contextlib.suppress(NotFound):
                try:
                    await self.store.remove(image.reference)
                    log.info("removed image %s: no container on this host uses it", image.reference)
                except ImageError as err:  # e.g. its files are busy: the next cleanup retries
                    log.warning("cannot remove unused image %s: %s", image.reference, err)


def _canonical(reference: str) -> str:
    try:
        return str(image_ref.parse(reference))
    except UserError:
        return reference
