"""A small HTTP/1.1 server on a unix socket, for JSON calls from local engines.

Docker's plug-in client and vxmesh-cni POST a JSON object and read one back.
Only root may call (the peer's credentials, SO_PEERCRED): the calls give a
namespace a container's interface. The caller's pid goes to the handler:
namespace paths are resolved in the caller's own mount namespace.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20          # a request is a few hundred bytes; a megabyte is abuse
MAX_HEADER_LINES = 100
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int

    def path(self, path: str) -> str:
        """`path` as the caller sees it, from here: through its root, in its mount namespace."""
        return f"/proc/{self.pid}/root{path}"


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


Handler = Callable[[dict, Peer], Awaitable[dict]]


class JsonServer:
    def __init__(self, path: Path, handlers: dict[str, Handler]):
        self.path = Path(path)
        self.handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            self.path.unlink()   # left by an earlier agent: nobody serves it
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = _peer(writer.get_extra_info("socket"))
            while True:
                try:
                    request = await _read_request(reader)
                except HttpError as err:
                    await _respond(writer, err.status, {"Err": str(err)}, close=True)
                    return
                if request is None:
                    return
                path, body = request
                status, answer = await self._call(path, body, peer)
                await _respond(writer, status, answer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _call(self, path: str, body: bytes, peer: Peer) -> tuple[int, dict]:
        handler = self.handlers.get(path)
        if handler is None:
            return 404, {"Err": f"{path} is not served here"}
        if peer.uid != 0:
            return 403, {"Err": "only root may call the vxmesh plug-in"}
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            return 400, {"Err": f"{path}: the request is not a JSON object: {err}"}
        began = time.monotonic()
        try:
            answer = await handler(request, peer)
            log.debug("%s %s -> %s (%.3fs)", path, request, answer, time.monotonic() - began)
            return 200, answer
        except Exception as err:  # the engine gets the reason; the loop goes on
            if not getattr(err, "expected", False):
                log.exception("%s failed", path)
            # libnetwork's driver API reads "Err", its IPAM API "Error".
            message = str(err) or type(err).__name__
            answer = {"Err": message, "Error": message}
            if hasattr(err, "cni_code"):
                answer["Code"] = err.cni_code
            return 200, answer


def _peer(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", raw)
    return Peer(pid=pid, uid=uid)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or parts[0] not in ("POST", "GET"):
        raise HttpError(400, "expected POST /Method HTTP/1.1")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        header = (await reader.readline()).decode("latin-1").strip()
        if not header:
            break
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise HttpError(400, "too many header lines")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
            if len(body) > MAX_BODY:
                raise HttpError(413, "request too large")
    else:
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            raise HttpError(413, "request too large")
        body = await reader.readexactly(length)
    return parts[1], body


async def _respond(writer: asyncio.StreamWriter, status: int, answer: dict, close: bool = False) -> None:
    body = json.dumps(answer).encode()
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Too Large"}.get(status, "")
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n")
    writer.write(head.encode() + body)
    await writer.drain()
