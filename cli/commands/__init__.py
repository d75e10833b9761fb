"""The user commands: each `vxmesh COMMAND` is one coroutine taking its service's stub and the parsed args.

`COMMANDS` maps the command name (the first word after `vxmesh`) to it; a
command with sub-actions (`network create`) dispatches on `args.action`
itself. A command returns the process's exit code. `SERVICES` names the
gRPC service a command calls when it is not `Controller` (CHANNEL: the
command is given the channel and makes its own stubs).
"""
from __future__ import annotations

from cli.commands import cluster, containers, images, networks, services, stacks

COMMANDS = {
    **cluster.COMMANDS,
    **containers.COMMANDS,
    **images.COMMANDS,
    **networks.COMMANDS,
    **services.COMMANDS,
    **stacks.COMMANDS,
}
CHANNEL = ""   # SERVICES value: the command takes the channel, not one stub
SERVICES = {**{name: "Images" for name in images.COMMANDS}, **{name: "Services" for name in services.COMMANDS},
            # A stack needs two services (networks and services): it is given the channel itself.
            **{name: CHANNEL for name in stacks.COMMANDS}}
