"""Errors the user caused or can act on, each tied to the gRPC status it maps to.

The API layer turns any `UserError` into `context.abort(err.code, str(err))`,
so the message must read well on its own, on one line, in the CLI's output.
Anything else escaping the store is a bug or an internal failure.
"""
from __future__ import annotations

import grpc


class UserError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        # The CLI prints the message as one line after "Error: ".
        self.message = " ".join(message.split())
        super().__init__(self.message)


class NotFound(UserError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(UserError):
    code = grpc.StatusCode.ALREADY_EXISTS


class InvalidArgument(UserError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(UserError):
    """The request is valid but the current state forbids it (e.g. network in use)."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(UserError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Aborted(UserError):
    """Concurrent changes kept invalidating our transaction; retrying may work."""
    code = grpc.StatusCode.ABORTED


class Unavailable(UserError):
    """The state store (etcd) cannot be reached."""
    code = grpc.StatusCode.UNAVAILABLE
