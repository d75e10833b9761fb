"""Docker's name for a container, read from its API on a unix socket
(agent/engines/docker_api.py), against a stand-in for dockerd's answers."""
from __future__ import annotations

import asyncio
import json
import urllib.parse

import pytest

from agent.engines.docker_api import DockerApiError, container_name

CID = "a" * 64


async def serve(tmp_path, answer):
    """A unix socket answering each request with `answer(path)`: (status line, body)."""
    asked = []

    async def handle(reader, writer):
        request = (await reader.readuntil(b"\r\n\r\n")).decode()
        path = request.split()[1]
        asked.append(path)
        status, body = answer(path)
        writer.write(f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    socket = str(tmp_path / "docker.sock")
    server = await asyncio.start_unix_server(handle, socket)
    return server, socket, asked


async def test_the_name_comes_from_the_listing_filtered_by_id(tmp_path):
    listing = [{"Id": CID, "Names": ["/other/link", "/web_1"], "State": "created"}]
    server, socket, asked = await serve(tmp_path, lambda path: ("200 OK", json.dumps(listing).encode()))
    async with server:
        assert await container_name(socket, CID) == "web_1"
        # Docker no longer has it: no name, not an error.
        listing.clear()
        assert await container_name(socket, CID) == ""
    # The listing (served without the container's lock, so during its start), filtered by the id.
    path, _, query = asked[0].partition("?")
    assert path == "/containers/json"
    assert json.loads(urllib.parse.parse_qs(query)["filters"][0]) == {"id": [CID]}


async def test_what_docker_cannot_say_is_an_error_naming_the_socket(tmp_path):
    with pytest.raises(DockerApiError, match="did not answer"):
        await container_name(str(tmp_path / "nosuch.sock"), CID)
    server, socket, _ = await serve(tmp_path, lambda path: ("500 Internal Server Error", b"{}"))
    async with server:
        with pytest.raises(DockerApiError, match="500"):
            await container_name(socket, CID)
    bad = [{"Id": CID, "Names": ["/bad name"]}]
    server, socket, _ = await serve(tmp_path, lambda path: ("200 OK", json.dumps(bad).encode()))
    async with server:
        with pytest.raises(DockerApiError, match="invalid container name"):
            await container_name(socket, CID)
