"""The user commands: each `vxmesh COMMAND` is one coroutine taking its service's stub and the parsed args.

`COMMANDS` maps the command name (the first word after `vxmesh`) to it; a
command with sub-actions (`network create`) dispatches on `args.action`
itself. A command returns the process's exit code. `SERVICES` names the
gRPC service a command calls when it is not `Controller`.
"""
from __future__ import annotations

from cli.commands import cluster, containers, images, networks, services

COMMANDS = {
    **cluster.COMMANDS,
    **containers.COMMANDS,
    **images.COMMANDS,
    **networks.COMMANDS,
    **services.COMMANDS,
}
SERVICES = {**{name: "Images" for name in images.COMMANDS}, **{name: "Services" for name in services.COMMANDS}}
