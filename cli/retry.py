"""A call that loses its controller moves on to the next, with the same request id.

`--controller` may name several controllers. A change (run, start, stop,
rm; network create, rm, connect, disconnect, prune) carries a request id
the CLI chose (or --request-id): when the call
breaks mid-way (the controller died, its stream went), the CLI cannot tell
whether the change was made, so it sends the very same request to the next
controller; the controllers' record of request ids (controller/store/
requests.py) makes a repeat return the first one's result. So `run` during
a controller kill either succeeds once or fails cleanly, never both. When
no controller answers in time, the line says the outcome is unknown and
how to find it out, and the exit code is OUTCOME_UNKNOWN_EXIT.

Reads are retried the same way; `exec` and `logs` are not (their output may
already be half printed).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

import grpc

from cli.options import CliError, OutcomeUnknownError
from proto.errors import ANSWERED_KEY

# How long the CLI keeps trying controllers after a call broke.
RETRY_SECONDS = 30.0
NOT_RETRIED = frozenset({"exec", "logs"})
# What a call that broke in transit looks like, as gRPC reports it. A
# controller's own answers (UNAVAILABLE for "etcd is unreachable", say) are
# not breaks: they are final, and another controller would say the same.
BROKEN_TEXT = ("Socket closed", "Stream removed", "Connection reset", "Connection refused", "GOAWAY",
               "failed to connect", "Broken pipe", "recvmsg", "sendmsg", "Cancelled", "Socket operation")


def addresses(text: str) -> list[str]:
    found = [a.strip() for a in text.split(",") if a.strip()]
    if not found:
        raise CliError("no controller address given (set --controller or VXMESH_CONTROLLER)")
    return found


def ensure_request_id(args: argparse.Namespace) -> str:
    """The change's request id, chosen once per command, or "" for a read."""
    if not hasattr(args, "request_id"):
        return ""
    if not args.request_id:
        # 128 random bits as 32 hex digits, as uuid4().hex (without loading uuid, and platform with it).
        args.request_id = os.urandom(16).hex()
    return args.request_id


def broken(err: grpc.aio.AioRpcError) -> bool:
    """Whether the call broke in transit rather than being answered."""
    if any(key == ANSWERED_KEY for key, _ in (err.trailing_metadata() or ())):
        return False   # the controller's own answer, whatever it quotes
    if err.code() == grpc.StatusCode.CANCELLED:
        return True   # a controller shutting down; it never cancels on purpose
    details = err.details() or ""
    return (err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
            and any(t in details for t in BROKEN_TEXT))


async def call_with_retry(args: argparse.Namespace, attempt: Callable[[str], Awaitable[int]],
                          retry_seconds: float = RETRY_SECONDS) -> int:
    """Run `attempt(address)` on the controllers in turn until one answers."""
    targets = addresses(args.controller)
    request_id = ensure_request_id(args)
    retried = args.command not in NOT_RETRIED
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_seconds
    tries, backoff, had_break = 0, 0.2, False
    while True:
        address = targets[tries % len(targets)]
        tries += 1
        try:
            return await attempt(address)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise OutcomeUnknownError(_unknown(err.details() or "", args, request_id)) from None
            if not (retried and broken(err)):
                raise CliError(err.details() or err.code().name) from None
            last = f"{address}: {err.details() or err.code().name}"
            had_break = True
        except CliError as err:
            # Could not reach it: nothing was sent. Another may answer; after
            # a break, this one may be back (a restart) within the deadline.
            untried = tries < len(targets)
            if not retried or not (untried or had_break):
                raise
            if not had_break:   # the break stays the story
                last = str(err)
        if loop.time() >= deadline:
            if request_id:
                raise OutcomeUnknownError(
                    f"the outcome is unknown: the call broke ({last}) and no controller answered within "
                    f"{retry_seconds:.0f}s; {_how_to_check(args, request_id)}")
            raise CliError(last)
        print(f"vxmesh: {last}; trying {targets[tries % len(targets)]}"
              + (f" with the same request id {request_id}" if request_id else ""), file=sys.stderr)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 2.0)


def _unknown(details: str, args: argparse.Namespace, request_id: str) -> str:
    if details.startswith("the outcome is unknown"):
        return f"{details}{_repeat(args, request_id)}"
    return (f"the outcome is unknown: no answer from the controller in time ({details or 'deadline exceeded'}); "
            f"{_how_to_check(args, request_id)}")


def _how_to_check(args: argparse.Namespace, request_id: str) -> str:
    names = getattr(args, "names", None) or []   # stop, start, rm take several
    name = getattr(args, "name", "") or (names[0] if len(names) == 1 else "")
    if args.command == "network":
        # create and rm name a network; connect and disconnect a container and a network
        container = getattr(args, "container", "")
        check = (f"`vxmesh inspect {container}`" if container else
                 f"`vxmesh network inspect {name}`" if name else "`vxmesh network ls`")
    else:
        check = f"`vxmesh inspect {name}`" if name else "`vxmesh ps -a`"
    return f"the change may have been made: check with {check}{_repeat(args, request_id)}"


def _repeat(args: argparse.Namespace, request_id: str) -> str:
    if not request_id:
        return ""
    return f", or repeat the command with --request-id {request_id} to get its result"
