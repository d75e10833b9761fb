"""A user's mistake as a gRPC status: every service method answers a UserError with its one line.

The status carries ANSWERED in its trailing metadata: a client can tell the
controller's own answer (final, whatever its code) from a call that broke in
transit (which it may repeat elsewhere with its request id, cli/retry.py).
"""
from __future__ import annotations

from proto.errors import ANSWERED, UserError


def user_errors(method):
    """Turn a UserError into a gRPC status with its one-line message."""
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except UserError as err:
            await context.abort(err.code, str(err), trailing_metadata=ANSWERED)
    wrapper.__name__ = method.__name__
    return wrapper


def user_errors_streaming(method):
    """The same for server-streaming methods (async generators)."""
    async def wrapper(self, request, context):
        try:
            async for item in method(self, request, context):
                yield item
        except UserError as err:
            await context.abort(err.code, str(err), trailing_metadata=ANSWERED)
    wrapper.__name__ = method.__name__
    return wrapper
