"""What Docker's own API says about one of its containers: its name.

libnetwork tells a remote network driver the endpoint and the sandbox, never
the container's name, so the embedded DNS could not answer a Docker
container by name. The agent asks the engine instead, once it knows the
container's id (agent/engines/endpoints.py finds it from the cgroup of the
sandbox's first process): `GET /containers/json?all=1&filters={"id":[ID]}`
on Docker's unix socket. The listing is served from dockerd's in-memory
view without taking the container's lock, so it answers while the container
is still starting (an inspect would wait for the start to finish).

Plain HTTP/1.0 over the socket (the connection closes after the answer, so
the body is what comes before EOF): no client library for one GET.
"""
from __future__ import annotations

import asyncio
import json
import urllib.parse

from proto import validate
from proto.errors import InvalidArgument

TIMEOUT_SECONDS = 5.0
MAX_ANSWER = 1 << 20


class DockerApiError(Exception):
    """Docker's API could not say (no socket, an error, an answer not understood)."""


async def container_name(socket: str, container_id: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """The name of Docker container `container_id` (without Docker's leading '/'),
    or "" when Docker has no such container."""
    filters = urllib.parse.quote(json.dumps({"id": [container_id]}, separators=(",", ":")))
    try:
        body = await asyncio.wait_for(_get(socket, f"/containers/json?all=1&filters={filters}"), timeout)
    except (OSError, asyncio.TimeoutError) as err:
        raise DockerApiError(f"Docker's API at {socket} did not answer: {err or 'timed out'}") from None
    try:
        listed = json.loads(body)
    except ValueError:
        raise DockerApiError(f"Docker's API at {socket} answered something other than JSON") from None
    for container in listed if isinstance(listed, list) else []:
        if isinstance(container, dict) and str(container.get("Id", "")).startswith(container_id):
            names = [n.lstrip("/") for n in container.get("Names") or [] if isinstance(n, str)]
            # Legacy links add NAME/ALIAS entries; the container's own name has no '/'.
            own = [n for n in names if "/" not in n]
            if not own:
                return ""
            try:
                return validate.name("container", own[0])
            except InvalidArgument as err:
                raise DockerApiError(str(err)) from None
    return ""


async def _get(socket: str, path: str) -> bytes:
    reader, writer = await asyncio.open_unix_connection(socket)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        await writer.drain()
        answer = b""
        while chunk := await reader.read(65536):
            answer += chunk
            if len(answer) > MAX_ANSWER:
                raise DockerApiError("Docker's API answered more than expected")
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    status = status_line.split()
    if len(status) < 2 or status[1] != b"200":
        raise DockerApiError(f"Docker's API answered {status_line.decode(errors='replace')!r}")
    return body
