"""`vxmesh-cni`: the CNI plugin that puts a CNI runtime's containers (podman's) on vxmesh networks.

The runtime runs it with CNI_COMMAND and the rest of the call in the
environment and the network's configuration on stdin (proto/cni.py reads
and checks both). It holds no state and touches no kernel object: it asks
the vxmesh agent of this host, over the agent's plug-in socket (the
configuration's "socket", /run/docker/plugins/vxmesh.sock by default), and
prints what the agent answers, a CNI result or a CNI error, on stdout. The
agent resolves CNI_NETNS in this process's mount namespace, so the runtime's
paths mean what the runtime meant. Standard library only: it starts for
every container.

    {"cniVersion": "1.0.0", "name": "blue",
     "plugins": [{"type": "vxmesh-cni", "network": "blue"}]}
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import sys

from proto import cni

TIMEOUT_SECONDS = 90.0   # the agent answers once the interface is in place
PATHS = {"ADD": "/Cni.Add", "CHECK": "/Cni.Check", "DEL": "/Cni.Del"}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=TIMEOUT_SECONDS)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def ask_agent(call: cni.Invocation, environ: dict[str, str]) -> dict:
    body = json.dumps({"command": call.command, "container_id": call.container_id, "netns": call.netns,
                       "ifname": call.ifname, "args": environ.get("CNI_ARGS", ""), "config": call.config})
    connection = _UnixConnection(call.socket)
    try:
        connection.request("POST", PATHS[call.command], body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read() or b"{}")
    except (OSError, http.client.HTTPException) as err:
        raise cni.CniError(cni.TRY_AGAIN_LATER, f"the vxmesh agent does not answer on {call.socket}",
                           str(err)) from None
    except ValueError as err:
        raise cni.CniError(cni.IO_FAILURE, "the vxmesh agent's answer is not JSON", str(err)) from None
    finally:
        connection.close()
    if answer.get("Err"):
        raise cni.CniError(int(answer.get("Code") or cni.REFUSED), answer["Err"])
    return answer


def run(environ: dict[str, str], stdin: str) -> tuple[int, str]:
    """The exit code and stdout of one call."""
    version = cni.SPEC_VERSION
    try:
        command = environ.get("CNI_COMMAND", "")
        try:
            config = json.loads(stdin) if stdin.strip() else None
        except ValueError as err:
            if command == "VERSION":
                config = None
            else:
                raise cni.CniError(cni.DECODE_FAILURE, "the network configuration on stdin is not JSON",
                                   str(err)) from None
        if isinstance(config, dict) and isinstance(config.get("cniVersion"), str):
            version = config["cniVersion"]
        if command == "VERSION":
            return 0, json.dumps(cni.version_answer(version))
        call = cni.invocation(environ, None)   # the environment first: CNI_COMMAND and the rest
        call = cni.invocation(environ, cni.check_config(config))
        answer = ask_agent(call, environ)
        if call.command == "ADD":
            return 0, json.dumps(answer["result"])
        return 0, ""
    except cni.CniError as err:
        if err.code == cni.INCOMPATIBLE_VERSION:
            version = cni.SPEC_VERSION
        return 1, json.dumps(err.to_dict(version))


def main() -> int:
    code, out = run(dict(os.environ), sys.stdin.read())
    if out:
        print(out)
    return code


if __name__ == "__main__":
    sys.exit(main())
