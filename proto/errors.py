"""Errors the user caused or can act on, each tied to the gRPC status it maps to.

Raised by the rules every package shares (proto/validate.py) and by the
daemons; the controller's API layer turns any `UserError` into a gRPC status
(`context.abort(err.code, str(err))`), so the message must read well on its
own, on one line, in the CLI's output. Anything else escaping a daemon is a
bug or an internal failure.

Standard library only: grpc is imported the first time a status code is
asked for, so the config and validation rules stay usable by the
provisioning script before vxmesh's dependencies are installed.
"""
from __future__ import annotations


class _StatusCode:
    """`error.code` (and `ErrorClass.code`): the grpc.StatusCode named by `status`."""

    def __get__(self, obj, cls):
        import grpc
        return grpc.StatusCode[(cls if obj is None else obj).status]


class UserError(Exception):
    # The name of the grpc.StatusCode this error is answered with.
    status = "UNKNOWN"
    code = _StatusCode()

    def __init__(self, message: str) -> None:
        # The CLI prints the message as one line after "Error: ".
        self.message = " ".join(message.split())
        super().__init__(self.message)


class NotFound(UserError):
    status = "NOT_FOUND"


class AlreadyExists(UserError):
    status = "ALREADY_EXISTS"


class InvalidArgument(UserError, ValueError):
    """Input that breaks a rule; also a ValueError, for callers that only care that a value is bad."""
    status = "INVALID_ARGUMENT"


class FailedPrecondition(UserError):
    """The request is valid but the current state forbids it (e.g. network in use)."""
    status = "FAILED_PRECONDITION"


class PermissionDenied(UserError):
    """The caller may not do this (an agent acting for another host)."""
    status = "PERMISSION_DENIED"


class ResourceExhausted(UserError):
    status = "RESOURCE_EXHAUSTED"


class Aborted(UserError):
    """Concurrent changes kept invalidating our transaction; retrying may work."""
    status = "ABORTED"


class Unavailable(UserError):
    """The state store (etcd) cannot be reached."""
    status = "UNAVAILABLE"


class OutcomeUnknown(UserError):
    """The change was made, but its host did not confirm carrying it out in time:
    it may yet happen. Not a refusal: the CLI exits with its own code
    (OUTCOME_UNKNOWN_EXIT) so a script can tell the two apart."""
    status = "DEADLINE_EXCEEDED"


# The CLI's exit code when a change's outcome is unknown (a refusal exits 1).
OUTCOME_UNKNOWN_EXIT = 3

# Trailing metadata on every error status the controller itself sends: an
# answer, as opposed to a call that broke in transit.
ANSWERED_KEY = "vxmesh-answered"
ANSWERED = ((ANSWERED_KEY, "1"),)


class ImageError(FailedPrecondition):
    """An image could not be pulled, unpacked, read, copied or removed.

    A FailedPrecondition: the request was well formed, but the image (or its
    registry) is not in a state that allows it; the message names the image
    and says why, in one line.
    """
