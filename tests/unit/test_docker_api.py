"""Docker's name for a container, read from its API on a unix socket
(agent/engines/docker_api.py), against a stand-in for dockerd's answers."""
from __future__ import annotations

import asyncio
import json
import urllib.parse

import pytest

from agent.engines.docker_api import DockerApiError, DockerNames, container_names

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
        assert await container_names(socket, CID) == DockerNames("web_1")
        # Docker no longer has it: no name, not an error.
        listing.clear()
        assert await container_names(socket, CID) == DockerNames()
    # The listing (served without the container's lock, so during its start), filtered by the id.
    path, _, query = asked[0].partition("?")
    assert path == "/containers/json"
    assert json.loads(urllib.parse.parse_qs(query)["filters"][0]) == {"id": [CID]}


async def test_what_docker_cannot_say_is_an_error_naming_the_socket(tmp_path):
    with pytest.raises(DockerApiError, match="did not answer"):
        await container_names(str(tmp_path / "nosuch.sock"), CID)
    server, socket, _ = await serve(tmp_path, lambda path: ("500 Internal Server Error", b"{}"))
    async with server:
        with pytest.raises(DockerApiError, match="500"):
            await container_names(socket, CID)
    bad = [{"Id": CID, "Names": ["/bad name"]}]
    server, socket, _ = await serve(tmp_path, lambda path: ("200 OK", json.dumps(bad).encode()))
    async with server:
        with pytest.raises(DockerApiError, match="invalid container name"):
            await container_names(socket, CID)


def docker_with(networks: dict):
    """dockerd's answers for container CID named web_1 on `networks`: the listing
    leaves the aliases out (as dockerd's does), the inspect has them."""
    listing = [{"Id": CID, "Names": ["/web_1"], "NetworkSettings": {"Networks": {
        name: {**entry, "Aliases": None} for name, entry in networks.items()}}}]
    inspect = {"Id": CID, "Name": "/web_1", "NetworkSettings": {"Networks": networks}}

    def answer(path):
        if path.startswith("/containers/json"):
            return "200 OK", json.dumps(listing).encode()
        if path == f"/containers/{CID}/json":
            return "200 OK", json.dumps(inspect).encode()
        return "404 Not Found", b"{}"
    return answer


async def test_the_aliases_are_those_on_the_endpoints_network(tmp_path):
    """--network-alias is per network: the entry holding the endpoint's id; Docker's
    own alias (the short id) and the name itself are left out, and aliases that are
    no host name are set apart, not answered."""
    answer = docker_with({
        "vxnet": {"EndpointID": "e1", "Aliases": ["db", CID[:12], "web_1", "bad_alias!", "db"]},
        "other": {"EndpointID": "e2", "Aliases": ["elsewhere"]}})
    server, socket, asked = await serve(tmp_path, answer)
    async with server:
        assert await container_names(socket, CID, "e1") == DockerNames("web_1", ("db",), ("bad_alias!",))
        assert asked[-1] == f"/containers/{CID}/json"
        assert await container_names(socket, CID, "e2") == DockerNames("web_1", ("elsewhere",))
        # An endpoint Docker does not list on any network: its name, no alias.
        assert await container_names(socket, CID, "e3") == DockerNames("web_1")


async def test_one_network_whose_endpoint_id_is_not_written_is_the_endpoints(tmp_path):
    networks = {"vxnet": {"EndpointID": "", "Aliases": ["db"]}}
    server, socket, _ = await serve(tmp_path, docker_with(networks))
    async with server:
        assert await container_names(socket, CID, "e1") == DockerNames("web_1", ("db",))
        # Two networks and no id written: it cannot say which, so no alias.
        networks["other"] = {"EndpointID": "", "Aliases": ["x"]}   # (the inspect's own dict)
        assert await container_names(socket, CID, "e1") == DockerNames("web_1")


async def test_a_name_without_aliases_when_the_inspect_fails(tmp_path):
    listing = [{"Id": CID, "Names": ["/web_1"]}]
    answer = lambda path: (("200 OK", json.dumps(listing).encode()) if path.startswith("/containers/json")
                           else ("500 Internal Server Error", b"{}"))
    server, socket, _ = await serve(tmp_path, answer)
    async with server:
        found = await container_names(socket, CID, "e1")
    assert (found.name, found.aliases) == ("web_1", ())
    assert "500" in found.aliases_unknown
