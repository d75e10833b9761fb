"""The Images service: `vxmesh image load|pull|push|ls|inspect|rm`, run on the controller.

They run here, not in the CLI, because the controller is the one that
reaches the registry: it holds the registry's address, trusts its CA and
presents a certificate it accepts, while the CLI may run anywhere the
controller is reachable (the namespace lab's CLI runs in a namespace with
no route to the lab's fabric at all). `load` streams the archive here, as
`docker load` streams it to the Docker daemon.
"""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from controller.images.cluster_images import ClusterImages, ImageInfo
from controller.store import Store
from controller.user_errors import user_errors
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.errors import FailedPrecondition, ResourceExhausted
from proto.image_config import Healthcheck

# An archive larger than this is refused while it arrives.
MAX_ARCHIVE_BYTES = 16 * 1024 ** 3
NO_REGISTRY = ("this controller has no image registry: set `registry` in its config "
               "(deploy/config/controller.toml)")


class ImagesService(pb_grpc.ImagesServicer):
    def __init__(self, images: ClusterImages | None, store: Store):
        self.images = images
        self.store = store

    def _cluster(self) -> ClusterImages:
        if self.images is None:
            raise FailedPrecondition(NO_REGISTRY)
        return self.images

    @user_errors
    async def Load(self, request_iterator, context):
        images = self._cluster()
        with tempfile.TemporaryDirectory(prefix="vxmesh-load-") as spool:
            path, shown = Path(spool) / "archive", "the archive"
            size = 0
            with open(path, "wb") as archive:
                async for chunk in request_iterator:
                    shown = chunk.name or shown
                    size += len(chunk.data)
                    if size > MAX_ARCHIVE_BYTES:
                        raise ResourceExhausted(f"{shown} is larger than {MAX_ARCHIVE_BYTES} bytes")
                    await asyncio.to_thread(archive.write, chunk.data)
            return pb.ImageLines(lines=await images.load(path, shown))

    @user_errors
    async def Pull(self, request, context):
        return pb.ImageLines(lines=await self._cluster().pull(request.reference))

    @user_errors
    async def Push(self, request, context):
        return pb.ImageLines(lines=await self._cluster().push(request.reference))

    @user_errors
    async def List(self, request, context):
        return pb.ImageList(images=[to_wire(i) for i in await self._cluster().list()])

    @user_errors
    async def Inspect(self, request, context):
        return pb.ImageList(images=[to_wire(i) for i in await self._cluster().inspect(request.reference)])

    @user_errors
    async def Remove(self, request, context):
        images = self._cluster()
        users: dict[str, list[str]] = {}
        for spec, _ in await self.store.list_containers():
            users.setdefault(spec.image, []).append(spec.name)
        lines = []
        for reference in request.references:
            lines += await images.remove(reference, users)
        return pb.ImageLines(lines=lines)


def to_wire(info: ImageInfo) -> pb.Image:
    config = info.config
    check = config.healthcheck or Healthcheck(())
    return pb.Image(
        reference=str(info.reference), id=info.id, digest=info.digest, created=config.created,
        size=info.size, architecture=config.architecture, os=config.os,
        config=pb.ImageConfig(entrypoint=config.entrypoint, cmd=config.cmd, env=config.env,
                              working_dir=config.working_dir, user=config.user,
                              exposed_ports=config.exposed_ports, labels=config.labels,
                              stop_signal=config.stop_signal, healthcheck_test=check.test,
                              healthcheck_interval=check.interval_ns, healthcheck_timeout=check.timeout_ns,
                              healthcheck_start_period=check.start_period_ns, healthcheck_retries=check.retries))
