"""A user's mistake as a gRPC status: every service method answers a UserError with its one line."""
from __future__ import annotations

from proto.errors import UserError


def user_errors(method):
    """Turn a UserError into a gRPC status with its one-line message."""
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except UserError as err:
            await context.abort(err.code, str(err))
    wrapper.__name__ = method.__name__
    return wrapper


def user_errors_streaming(method):
    """The same for server-streaming methods (async generators)."""
    async def wrapper(self, request, context):
        try:
            async for item in method(self, request, context):
                yield item
        except UserError as err:
            await context.abort(err.code, str(err))
    wrapper.__name__ = method.__name__
    return wrapper
