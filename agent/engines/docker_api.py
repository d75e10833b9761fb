"""What Docker's own API says about one of its containers: its name and its aliases.

libnetwork tells a remote network driver the endpoint and the sandbox, never
the container's name nor its `--network-alias`es, so the embedded DNS could
not answer a Docker container by them. The agent asks the engine instead,
once it knows the container's id (agent/engines/endpoints.py finds it from the cgroup of the
sandbox's first process): `GET /containers/json?all=1&filters={"id":[ID]}`
on Docker's unix socket. The listing is served from dockerd's in-memory
view without taking the container's lock, so it answers while the container
is still starting. The listing leaves each network's `Aliases` out (what
`--network-alias` and compose's service names gave), so they are read from
the container's inspect, `GET /containers/ID/json`, which waits for the
start to finish (it takes the container's lock): its
`NetworkSettings.Networks` is keyed by Docker's name for the network, and
the one the endpoint is on is the entry with the endpoint's id, or the only
entry when Docker has not written the id.

Plain HTTP/1.0 over the socket (the connection closes after the answer, so
the body is what comes before EOF): no client library for one GET.
"""
from __future__ import annotations

import asyncio
import json
import urllib.parse
from dataclasses import dataclass

from proto import validate
from proto.errors import InvalidArgument

TIMEOUT_SECONDS = 5.0
MAX_ANSWER = 1 << 20


class DockerApiError(Exception):
    """Docker's API could not say (no socket, an error, an answer not understood)."""


@dataclass(frozen=True)
class DockerNames:
    """What the embedded DNS may answer for a Docker container on one network."""
    name: str = ""                   # "": Docker has no such container
    aliases: tuple[str, ...] = ()    # its aliases on the endpoint's network, valid host names only
    refused: tuple[str, ...] = ()    # aliases Docker took that are no host name (not answered)
    aliases_unknown: str = ""        # why the aliases could not be read ("": they were)


async def container_names(socket: str, container_id: str, endpoint_id: str = "",
                          timeout: float = TIMEOUT_SECONDS) -> DockerNames:
    """The name of Docker container `container_id` (without Docker's leading '/')
    and its aliases on the network of Docker endpoint `endpoint_id`. Waits for the
    container's start to finish (up to `timeout`) for the aliases; a name is
    returned without them when they cannot be read."""
    filters = urllib.parse.quote(json.dumps({"id": [container_id]}, separators=(",", ":")))
    listed = await _get_json(socket, f"/containers/json?all=1&filters={filters}", timeout)
    for container in listed if isinstance(listed, list) else []:
        if isinstance(container, dict) and str(container.get("Id", "")).startswith(container_id):
            names = [n.lstrip("/") for n in container.get("Names") or [] if isinstance(n, str)]
            # Legacy links add NAME/ALIAS entries; the container's own name has no '/'.
            own = [n for n in names if "/" not in n]
            if not own:
                return DockerNames()
            try:
                name = validate.name("container", own[0])
            except InvalidArgument as err:
                raise DockerApiError(str(err)) from None
            try:
                inspected = await _get_json(socket, f"/containers/{container_id}/json", timeout)
            except DockerApiError as err:
                return DockerNames(name, aliases_unknown=str(err))
            return _with_aliases(name, container_id, _network_aliases(inspected, endpoint_id))
    return DockerNames()


async def _get_json(socket: str, path: str, timeout: float):
    try:
        body = await asyncio.wait_for(_get(socket, path), timeout)
    except (OSError, asyncio.TimeoutError) as err:
        raise DockerApiError(f"Docker's API at {socket} did not answer: {err or 'timed out'}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise DockerApiError(f"Docker's API at {socket} answered something other than JSON") from None


def _network_aliases(container, endpoint_id: str) -> list:
    settings = container.get("NetworkSettings") if isinstance(container, dict) else None
    networks = (settings or {}).get("Networks") or {}
    entries = [n for n in networks.values() if isinstance(n, dict)] if isinstance(networks, dict) else []
    mine = [n for n in entries if endpoint_id and n.get("EndpointID") == endpoint_id]
    if not mine and len(entries) == 1 and not entries[0].get("EndpointID"):
        mine = entries   # not written yet, and no other network it could be
    return [alias for n in mine for alias in (n.get("Aliases") or [])]


def _with_aliases(name: str, container_id: str, listed: list) -> DockerNames:
    """Docker adds the container's short id to its aliases; the DNS answers that anyway."""
    aliases: list[str] = []
    refused: list[str] = []
    for alias in listed:
        if not isinstance(alias, str) or alias in (name, container_id[:12]) or alias in aliases:
            continue
        try:
            aliases.append(validate.hostname(alias))
        except InvalidArgument:
            refused.append(alias)
    return DockerNames(name, tuple(aliases), tuple(refused))


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
