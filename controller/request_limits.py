"""Size limits on what a client may ask for, checked before anything is stored.

gRPC already caps a whole message (server.MAX_MESSAGE_BYTES); these bound
the lists and strings inside one, so a single request cannot make the
controller store (and every agent receive) an entry of megabytes, or make
an agent start a process with thousands of mounts. The limits are far above
anything a container needs; each error names the field and its limit.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from proto import validate
from proto.errors import InvalidArgument

MAX_COMMAND_ARGS = 1024
MAX_ARG_BYTES = 16 * 1024
MAX_COMMAND_BYTES = 128 * 1024
MAX_ENV_VARS = 512
MAX_ENV_BYTES = 64 * 1024
MAX_PORTS = 256
MAX_MOUNTS = 64
MAX_PATH_BYTES = 4096
MAX_NETWORKS_PER_CONTAINER = 16
MAX_NETWORK_OPTIONS = 16
MAX_OPTION_BYTES = 1024
MAX_IMAGE_REFERENCE = 512   # a 255-character name, a 128-character tag and a sha512 digest fit
MAX_USER = 256
MAX_CAPABILITIES = 64       # per --cap-add / --cap-drop list: more than there are capabilities
MAX_ULIMITS = 32
MAX_SECCOMP_PROFILE_BYTES = 256 * 1024   # Docker's own default profile is ~30 KiB of JSON
# An agent's hello lists the networks and containers it holds.
MAX_HELLO_NETWORKS = 10_000
MAX_HELLO_CONTAINERS = 100_000

# Labels are shown and filtered on, never interpreted: bounded so one request
# cannot store much.
MAX_LABELS = 64
MAX_LABEL_BYTES = 1024


def check_labels(labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"too many labels: {len(labels)} (at most {MAX_LABELS})")
    for key, value in labels.items():
        if not key or len(key.encode()) + len(value.encode()) > MAX_LABEL_BYTES or "\0" in key + value:
            raise InvalidArgument(f"invalid label {key[:40]!r}: a key of at most {MAX_LABEL_BYTES} bytes "
                                  "with its value, no NUL")


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def check_count(what: str, items: Iterable, limit: int) -> None:
    count = sum(1 for _ in items)
    if count > limit:
        raise InvalidArgument(f"too many {what}: {count} (at most {limit})")


def check_command(command: Iterable[str], what: str = "command") -> None:
    args = list(command)
    check_count(f"{what} arguments", args, MAX_COMMAND_ARGS)
    for index, arg in enumerate(args):
        if "\0" in arg:
            # execve takes C strings: a NUL would cut the argument short.
            raise InvalidArgument(f"{what} argument {index} contains a NUL byte")
        if _size(arg) > MAX_ARG_BYTES:
            raise InvalidArgument(f"{what} argument {index} is {_size(arg)} bytes (at most {MAX_ARG_BYTES})")
    total = sum(_size(arg) for arg in args)
    if total > MAX_COMMAND_BYTES:
        raise InvalidArgument(f"{what} is {total} bytes in all (at most {MAX_COMMAND_BYTES})")


def check_env(env: Mapping[str, str]) -> None:
    check_count("environment variables", env, MAX_ENV_VARS)
    total = sum(_size(k) + _size(v) for k, v in env.items())
    if total > MAX_ENV_BYTES:
        raise InvalidArgument(f"environment is {total} bytes in all (at most {MAX_ENV_BYTES})")


def check_run(request) -> None:
    """A RunRequest (proto/vxmesh.proto), before any of it is used."""
    check_command(request.command)
    check_command(request.entrypoint, "entrypoint")
    check_env(request.env)
    check_count("published ports", request.ports, MAX_PORTS)
    check_labels(request.labels)
    check_count("mounts", request.mounts, MAX_MOUNTS)
    check_count("networks", request.networks, MAX_NETWORKS_PER_CONTAINER)
    check_count("--cap-add capabilities", request.cap_add, MAX_CAPABILITIES)
    check_count("--cap-drop capabilities", request.cap_drop, MAX_CAPABILITIES)
    check_count("ulimits", request.ulimits, MAX_ULIMITS)
    if request.hostname:        # empty: the container's name
        validate.hostname(request.hostname)     # its length (63) and its characters
    for what, text, limit in (("image reference", request.image, MAX_IMAGE_REFERENCE),
                              ("user", request.user, MAX_USER),
                              ("seccomp profile", request.seccomp_profile, MAX_SECCOMP_PROFILE_BYTES)):
        if _size(text) > limit:
            raise InvalidArgument(f"{what} is {_size(text)} bytes (at most {limit})")
    for path in [request.working_dir, *(m.source for m in request.mounts), *(m.target for m in request.mounts)]:
        if _size(path) > MAX_PATH_BYTES:
            raise InvalidArgument(f"path {path[:40]!r}... is {_size(path)} bytes (at most {MAX_PATH_BYTES})")


def check_exec(request) -> None:
    check_command(request.command, "exec command")
    check_env(request.env)


def check_network_options(options: Mapping[str, str]) -> None:
    check_count("network options", options, MAX_NETWORK_OPTIONS)
    for key, value in options.items():
        if _size(key) + _size(value) > MAX_OPTION_BYTES:
            raise InvalidArgument(f"network option {key[:40]!r} is longer than {MAX_OPTION_BYTES} bytes")


def hello_problem(hello) -> str | None:
    """What is too big in an agent's Hello, or None."""
    if len(hello.networks) > MAX_HELLO_NETWORKS:
        return f"hello lists {len(hello.networks)} networks (at most {MAX_HELLO_NETWORKS})"
    if len(hello.containers) > MAX_HELLO_CONTAINERS:
        return f"hello lists {len(hello.containers)} containers (at most {MAX_HELLO_CONTAINERS})"
    return None
