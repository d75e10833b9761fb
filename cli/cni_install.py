"""`vxmesh cni install`: the CNI network config that puts a runtime's containers on a vxmesh network.

    vxmesh cni install --network blue          # /etc/cni/net.d/blue.conflist
    podman run --network blue ...

The file names vxmesh-cni and the vxmesh network; the runtime finds
vxmesh-cni in its CNI plugin directories (podman: cni_plugin_dirs in
containers.conf; the package installs it as a console script, link it
there). Checked before it is written: names by vxmesh's rules, the socket
an absolute path; written whole (a runtime never reads half a file).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from cli.options import CliError
from proto import cni, validate
from proto.errors import InvalidArgument


def conflist(name: str, network: str, socket: str) -> dict:
    # portMappings: podman passes `-p` in runtimeConfig only to a plugin that asks.
    # aliases: names the embedded DNS answers for the container (podman's --network-alias).
    plugin = {"type": cni.PLUGIN_TYPE, "network": network,
              "capabilities": {"portMappings": True, "aliases": True}}
    if socket != cni.DEFAULT_SOCKET:
        plugin["socket"] = socket
    return {"cniVersion": cni.SPEC_VERSION, "name": name, "plugins": [plugin]}


def run(args) -> int:
    name = args.name or args.network
    try:
        validate.name("network", args.network)
        validate.name("CNI network", name)
    except InvalidArgument as err:
        raise CliError(str(err)) from None
    if not args.socket.startswith("/"):
        raise CliError(f"--socket {args.socket!r}: give the absolute path of the agent's plug-in socket")
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.conflist"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(conflist(name, args.network, args.socket), indent=2) + "\n")
    os.replace(tmp, path)
    print(path)
    return 0
