"""The user commands: each `vxmesh COMMAND` is one coroutine taking the controller's stub and the parsed args.

`COMMANDS` maps the command name (the first word after `vxmesh`) to it; a
command with sub-actions (`network create`) dispatches on `args.action`
itself. A command returns the process's exit code.
"""
from __future__ import annotations

from cli.commands import cluster, containers, networks

COMMANDS = {
    **cluster.COMMANDS,
    **containers.COMMANDS,
    **networks.COMMANDS,
}
