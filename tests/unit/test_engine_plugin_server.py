"""The agent's plug-in socket (agent/engines/http_server.py) and the CNI contract's pure parts (proto/cni.py)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agent.engines.http_server import JsonServer
from proto import cni

NOBODY = 65534


class Refused(Exception):
    expected = True
    cni_code = cni.REFUSED


async def echo(request, peer):
    return {"got": request, "pid": peer.pid, "uid": peer.uid}


async def fails(request, peer):
    raise RuntimeError("the handler broke")


async def refuses(request, peer):
    raise Refused("address 10.0.0.5 is taken")


def raw_call(path: str, requests: list[bytes]) -> list[bytes]:
    """Send raw HTTP requests on one connection; the raw answers."""
    answers = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.settimeout(5)
        reader = sock.makefile("rb")
        for request in requests:
            sock.sendall(request)
            status = reader.readline()
            headers = {}
            while (line := reader.readline().strip()):
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            body = reader.read(int(headers["content-length"]))
            answers.append(status + body)
    return answers


def post(path: str, body: bytes) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.fixture
def server():
    # Under /run, not pytest's tmp_path: its parents are root's alone, and one
    # test needs another user to reach the socket's directory.
    root = Path(tempfile.mkdtemp(prefix="vxmesh-engines-test-", dir="/run" if os.geteuid() == 0 else None))
    os.chmod(root, 0o755)
    loop = asyncio.new_event_loop()
    path = root / "plugins" / "vxmesh.sock"
    server = JsonServer(path, {"/Echo": echo, "/Fails": fails, "/Refuses": refuses})
    loop.run_until_complete(server.start())
    thread_loop = loop

    import threading
    thread = threading.Thread(target=thread_loop.run_forever, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        shutil.rmtree(root, ignore_errors=True)


def test_calls_on_one_connection_and_every_failure_named(server):
    chunked = (b"POST /Echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n")
    answers = raw_call(str(server), [post("/Echo", b'{"x": 1}'), chunked, post("/Nope", b"{}"),
                                     post("/Echo", b"[1]"), post("/Fails", b"{}"), post("/Refuses", b"{}")])
    status, body = answers[0].split(b"\r\n", 1)
    assert status == b"HTTP/1.1 200 OK\r\n".strip()
    echoed = json.loads(body)
    assert echoed["got"] == {"x": 1} and echoed["uid"] == 0 and echoed["pid"] == os.getpid()
    assert json.loads(answers[1].split(b"\r\n", 1)[1])["got"] == {"a": 1}
    assert answers[2].startswith(b"HTTP/1.1 404") and b"/Nope is not served here" in answers[2]
    assert answers[3].startswith(b"HTTP/1.1 400") and b"not a JSON object" in answers[3]
    broke = json.loads(answers[4].split(b"\r\n", 1)[1])
    # libnetwork's network API reads "Err", its IPAM API "Error": both carry the reason
    assert broke == {"Err": "the handler broke", "Error": "the handler broke"}
    refused = json.loads(answers[5].split(b"\r\n", 1)[1])
    assert refused["Code"] == cni.REFUSED and "10.0.0.5" in refused["Err"]
    assert oct(os.stat(server).st_mode & 0o777) == "0o600"


CLIENT = """
import os, socket, sys
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
s.sendall(b"POST /Echo HTTP/1.1\\r\\nContent-Length: 2\\r\\n\\r\\n{}")
print(s.recv(4096).decode())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as nobody")
def test_only_root_may_call_with_the_control_of_each_guard(server):
    as_nobody = lambda: subprocess.run([sys.executable, "-c", CLIENT, str(server)], capture_output=True,  # noqa: E731
                                       text=True, timeout=10).stdout
    # the socket's mode keeps other users out...
    os.chmod(server.parent, 0o755)
    assert as_nobody().strip() == "EACCES"
    # ...and with the mode opened (the control), the peer's credentials still do
    os.chmod(server, 0o666)
    answer = as_nobody()
    assert answer.startswith("HTTP/1.1 403") and "only root may call the vxmesh plug-in" in answer
    assert raw_call(str(server), [post("/Echo", b"{}")])[0].startswith(b"HTTP/1.1 200")


def test_cni_args_and_the_environment_are_checked():
    assert cni.parse_args("IgnoreUnknown=1;IP=10.0.0.5;MAC=02:00:00:00:00:01") == {
        "IgnoreUnknown": "1", "IP": "10.0.0.5", "MAC": "02:00:00:00:00:01"}
    assert cni.parse_args("") == {}
    for bad in ("IP", "=x", "1X=2"):
        with pytest.raises(cni.CniError) as err:
            cni.parse_args(bad)
        assert err.value.code == cni.INVALID_ENVIRONMENT
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_IFNAME": "eth0", "CNI_NETNS": "/run/netns/x"}
    assert cni.invocation(env, {"name": "blue"}).network == "blue"
    assert cni.invocation(env, {"name": "n", "network": "blue"}).network == "blue"
    for change in ({"CNI_COMMAND": "FROB"}, {"CNI_CONTAINERID": ""}, {"CNI_IFNAME": "a/b"},
                   {"CNI_IFNAME": "x" * 16}, {"CNI_NETNS": "relative"}):
        with pytest.raises(cni.CniError) as err:
            cni.invocation(env | change, None)
        assert err.value.code == cni.INVALID_ENVIRONMENT, change
    # DEL needs no namespace: it may be gone already
    assert cni.invocation(env | {"CNI_COMMAND": "DEL", "CNI_NETNS": ""}, None).netns == ""


def test_config_and_results_in_each_version():
    for config, code in (([], cni.DECODE_FAILURE), ({"cniVersion": "0.2.0", "name": "x"}, cni.INCOMPATIBLE_VERSION),
                         ({"cniVersion": "1.0.0"}, cni.INVALID_CONFIG),
                         ({"cniVersion": "1.0.0", "name": "x", "socket": "rel"}, cni.INVALID_CONFIG)):
        with pytest.raises(cni.CniError) as err:
            cni.check_config(config)
        assert err.value.code == code
    new = cni.result("1.0.0", "eth0", "02:00:00:00:00:01", "/run/netns/x", "10.0.0.5/24")
    assert new["ips"] == [{"address": "10.0.0.5/24", "interface": 0}]
    old = cni.result("0.4.0", "eth0", "02:00:00:00:00:01", "/run/netns/x", "10.0.0.5/24", "10.0.0.1")
    assert old["ips"] == [{"address": "10.0.0.5/24", "interface": 0, "gateway": "10.0.0.1", "version": "4"}]
    error = cni.CniError(cni.TRY_AGAIN_LATER, "later", "why").to_dict("0.4.0")
    assert error == {"cniVersion": "0.4.0", "code": 11, "msg": "later", "details": "why"}
