"""The user commands: each `vxmesh COMMAND` is one coroutine taking its service's stub and the parsed args.

`command(name)` finds it: each module's `COMMANDS` maps the command name
(the first word after `vxmesh`) to it, and `MODULES` says which module holds
which name, so a command imports its own module only (`stack` alone needs
YAML, `run` none of the services' code); a command with sub-actions
(`network create`) dispatches on `args.action` itself. A command returns the process's exit code. `SERVICES` names the
gRPC service a command calls when it is not `Controller` (CHANNEL: the
command is given the channel and makes its own stubs).
"""
from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable

# command name -> the module of cli/commands holding it
# (tests/unit/test_cli_startup.py checks this against each module's COMMANDS).
MODULES = {
    **dict.fromkeys(("host", "health", "tables"), "cluster"),
    **dict.fromkeys(("ls", "list", "port", "run", "ps", "inspect", "exec", "logs", "attach", "stop", "start", "kill",
                     "rm"),
                    "containers"),
    **dict.fromkeys(("image", "images"), "images"),
    "network": "networks",
    "service": "services",
    "stack": "stacks",
}
CHANNEL = ""   # SERVICES value: the command takes the channel, not one stub
SERVICES = {"image": "Images", "images": "Images", "service": "Services",
            # A stack needs two services (networks and services): it is given the channel itself.
            "stack": CHANNEL}


def command(name: str) -> Callable[..., Awaitable[int]]:
    """The coroutine function of command `name`, its module imported now."""
    return importlib.import_module(f"cli.commands.{MODULES[name]}").COMMANDS[name]
