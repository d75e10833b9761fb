"""`vxmesh service ...`: its sub-commands and options, as `docker service` spells them."""
from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    service = sub.add_parser("service", help="manage services: replicated tasks kept running across hosts")
    actions = service.add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create", help="create a service: vxmesh service create [OPTIONS] IMAGE [COMMAND] [ARG...]",
        description="Create a service, as `docker service create`: the leading controller keeps its "
                    "tasks running, spread over the live hosts. Options go before IMAGE.")
    create.add_argument("-d", "--detach", action="store_true",
                        help="return at once instead of waiting for the tasks to run")
    create.add_argument("--name", required=True)
    create.add_argument("--replicas", type=int, default=None, help="number of tasks (default 1)")
    create.add_argument("--mode", choices=["replicated", "global"], default="replicated",
                        help="replicated (--replicas tasks) or global (one task per eligible host)")
    create.add_argument("--network", action="append", default=[], help="network to attach (repeatable)")
    create.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    create.add_argument("--restart-condition", choices=["any", "on-failure", "none"], default="any",
                        help="when an ended task is replaced (default any)")
    create.add_argument("--restart-max-attempts", type=int, default=0,
                        help="replacements of one slot at most (default 0: no limit)")
    create.add_argument("--restart-delay", default="1s",
                        help="wait before the first replacement, doubling each time up to 30s (default 1s)")
    create.add_argument("--constraint", action="append", default=[], metavar="node.hostname==NAME",
                        help="placement constraint (repeatable): node.hostname==NAME or !=NAME")
    create.add_argument("--endpoint-mode", choices=["vip", "dnsrr"], default="vip",
                        help="vip: one virtual IP per network, load-balanced (default); dnsrr: none, "
                             "the tasks' addresses by DNS")
    create.add_argument("-p", "--publish", action="append", default=[],
                        metavar="PUBLISHED:TARGET[/PROTO]",
                        help="publish a port (repeatable): on every live host through the routing mesh, or "
                             "published=P,target=T[,protocol=udp],mode=host only where tasks run")
    create.add_argument("--update-parallelism", type=int, default=1,
                        help="tasks replaced at once by `service update` (default 1; 0: all)")
    create.add_argument("--update-delay", default="0s", help="wait between update batches, e.g. 2s")
    create.add_argument("--health-cmd", default="", help="command run by `sh -c` in each task to check it")
    create.add_argument("--health-interval", default="30s", help="time between checks (default 30s)")
    create.add_argument("--health-timeout", default="30s", help="a check that takes longer fails (default 30s)")
    create.add_argument("--health-retries", type=int, default=3,
                        help="failures in a row that make a task unhealthy (default 3)")
    create.add_argument("--no-healthcheck", action="store_true",
                        help="no health check: not even the image's HEALTHCHECK")
    create.add_argument("--limit-memory", default="", help="memory limit of each task, e.g. 64m")
    create.add_argument("image", help="the image: NAME[:TAG][@DIGEST], e.g. busybox")
    create.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")
    for name, text in (("ls", "list services"),):
        cmd = actions.add_parser(name, help=text)
        cmd.add_argument("--format", choices=["table", "json"], default="table")
    ps = actions.add_parser("ps", help="list a service's tasks: their hosts, states and errors")
    ps.add_argument("--format", choices=["table", "json"], default="table")
    ps.add_argument("name")
    inspect = actions.add_parser("inspect", help="show services and their tasks as JSON")
    inspect.add_argument("names", nargs="+", metavar="NAME")
    scale = actions.add_parser("scale", help="set the number of tasks: vxmesh service scale NAME=N ...")
    scale.add_argument("pairs", nargs="+", metavar="NAME=N")
    update = actions.add_parser("update", help="change a service: a new image, command, environment, "
                                               "networks or constraints roll over its tasks, a batch at a time")
    update.add_argument("-d", "--detach", action="store_true",
                        help="return at once instead of waiting for every task to run the new version")
    update.add_argument("--image", default="")
    update.add_argument("--env-add", action="append", default=[], metavar="K=V")
    update.add_argument("--env-rm", action="append", default=[], metavar="K")
    update.add_argument("--args", default=None, help="the new command, as one string split like a shell's")
    update.add_argument("--replicas", type=int, default=None)
    update.add_argument("--update-parallelism", type=int, default=None,
                        help="tasks replaced at once (default 1; 0: all)")
    update.add_argument("--update-delay", default=None, help="wait between batches, e.g. 2s")
    update.add_argument("--network-add", action="append", default=[], metavar="NETWORK",
                        help="attach the tasks to a network too (repeatable; the tasks are replaced)")
    update.add_argument("--network-rm", action="append", default=[], metavar="NETWORK",
                        help="detach the tasks from a network (repeatable; the tasks are replaced)")
    update.add_argument("--publish-add", action="append", default=[], metavar="PUBLISHED:TARGET[/PROTO]",
                        help="publish a port, in the service's publish mode (repeatable)")
    update.add_argument("--publish-rm", action="append", default=[], metavar="PUBLISHED[/PROTO]",
                        help="stop publishing a port, named by its published port (repeatable)")
    update.add_argument("--constraint-add", action="append", default=[], metavar="node.hostname==NAME",
                        help="add a placement constraint (repeatable; the tasks are replaced)")
    update.add_argument("--constraint-rm", action="append", default=[], metavar="node.hostname==NAME",
                        help="remove a placement constraint (repeatable; the tasks are replaced)")
    update.add_argument("name")
    logs = actions.add_parser("logs", help="print the output of every task, each line prefixed TASK@HOST |")
    logs.add_argument("name")
    rm = actions.add_parser("rm", help="remove services and their tasks")
    rm.add_argument("names", nargs="+", metavar="NAME")


def add_stack_parsers(sub: argparse._SubParsersAction) -> None:
    stack = sub.add_parser("stack", help="deploy services and networks from a compose file")
    actions = stack.add_subparsers(dest="action", required=True)
    deploy = actions.add_parser("deploy", help="create or update a stack: vxmesh stack deploy -c FILE NAME")
    deploy.add_argument("-c", "--compose-file", required=True, metavar="FILE")
    deploy.add_argument("--prune", action="store_true", help="remove the stack's services the file no longer has")
    deploy.add_argument("name")
    ls = actions.add_parser("ls", help="list stacks")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ps = actions.add_parser("ps", help="list the tasks of a stack's services")
    ps.add_argument("--format", choices=["table", "json"], default="table")
    ps.add_argument("name")
    rm = actions.add_parser("rm", help="remove a stack's services and networks")
    rm.add_argument("name")
