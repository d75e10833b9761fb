"""`vxmesh image load|pull|push|ls|rm|inspect` and `vxmesh images`: the cluster's images.

They are calls of the controller's Images service, which runs skopeo
against the cluster's registry (controller/images/service.py says why
there); `load` streams the archive to it, from a file or standard input.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from cli.options import CliError
from cli.output import image_json, image_rows
from proto import image_ref
from proto import vxmesh_pb2 as pb

if TYPE_CHECKING:   # the annotations' stubs; the commands get cli/stubs.py's
    from proto import vxmesh_pb2_grpc as pb_grpc

# Copies between registries and unpacking big archives take their time.
IMAGE_TIMEOUT = 3600.0
CHUNK = 1024 * 1024   # well under gRPC's 4 MiB message cap


def archive_chunks(args: argparse.Namespace) -> AsyncIterator[pb.ArchiveChunk]:
    """The archive's chunks; the file is opened here, so a bad one fails before any call."""
    name = str(args.input) if args.input else "standard input"
    try:
        source = open(args.input, "rb") if args.input else sys.stdin.buffer
    except OSError as e:
        raise CliError(f"cannot read {name}: {e.strerror}") from None
    if source.isatty():
        raise CliError("no archive given: use -i FILE, or pipe one in (docker save IMAGE | vxmesh image load)")

    async def chunks() -> AsyncIterator[pb.ArchiveChunk]:
        with source:
            first = True
            while data := await asyncio.to_thread(source.read, CHUNK):
                yield pb.ArchiveChunk(data=data, name=name if first else "")
                first = False
    return chunks()


async def image(api: pb_grpc.ImagesStub, args: argparse.Namespace) -> int:
    if args.action == "ls":
        return await images(api, args)
    if args.action == "load":
        reply = await api.Load(archive_chunks(args), timeout=IMAGE_TIMEOUT)
    elif args.action in ("pull", "push"):
        image_ref.parse(args.reference)
        call = api.Pull if args.action == "pull" else api.Push
        reply = await call(pb.ImageRequest(reference=args.reference), timeout=IMAGE_TIMEOUT)
    elif args.action == "rm":
        reply = await api.Remove(pb.RemoveImageRequest(references=args.references), timeout=IMAGE_TIMEOUT)
    else:
        found = []
        for reference in args.references:
            found += (await api.Inspect(pb.ImageRequest(reference=reference), timeout=IMAGE_TIMEOUT)).images
        print(json.dumps([image_json(i) for i in found], indent=2))
        return 0
    for line in reply.lines:
        print(line)
    return 0


async def images(api: pb_grpc.ImagesStub, args: argparse.Namespace) -> int:
    found = (await api.List(pb.Empty(), timeout=IMAGE_TIMEOUT)).images
    print(json.dumps([image_json(i) for i in found], indent=2) if args.format == "json" else image_rows(list(found)))
    return 0


COMMANDS = {"image": image, "images": images}
