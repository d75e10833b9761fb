"""A user's mistake as a gRPC status: every service method answers a UserError with its one line.

The status carries ANSWERED in its trailing metadata: a client can tell the
controller's own answer (final, whatever its code) from a call that broke in
transit (which it may repeat elsewhere with its request id, cli/retry.py).
"""
from __future__ import annotations

from proto.errors import ANSWERED, UserError

# gRPC carries the message in a header, whose size is bounded (8 KiB by
# default): a message quoting a 10,000-character name must not turn into a
# transport error. No message of ours needs more.
MAX_MESSAGE = 1000


def bounded(message: str) -> str:
    """The message, its middle cut when too long (what it says of the value is
    usually at its end: "... not found")."""
    if len(message) <= MAX_MESSAGE:
        return message
    return message[:MAX_MESSAGE - 200] + "[...]" + message[-195:]


def user_errors(method):
    """Turn a UserError into a gRPC status with its one-line message."""
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except UserError as err:
            await context.abort(err.code, bounded(str(err)), trailing_metadata=ANSWERED)
    wrapper.__name__ = method.__name__
    return wrapper


def user_errors_streaming(method):
    """The same for server-streaming methods (async generators)."""
    async def wrapper(self, request, context):
        try:
            async for item in method(self, request, context):
                yield item
        except UserError as err:
            await context.abort(err.code, bounded(str(err)), trailing_metadata=ANSWERED)
    wrapper.__name__ = method.__name__
    return wrapper
