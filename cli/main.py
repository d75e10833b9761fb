"""`vxmesh`: the docker-shaped command line, and the way in to the daemons.

User commands talk to a controller over gRPC (address from --controller,
VXMESH_CONTROLLER, or the namespace lab's unix socket): on TCP with mutual
TLS and an admin certificate (--ca/--cert/--key, VXMESH_CA/_CERT/_KEY,
by default the ones provisioning installs in /etc/vxmesh/tls); on the
controller host's unix socket, which only root can open, without
(transport/channels.py says why). A user mistake is one line on stderr and
a non-zero exit, never a traceback. A change whose outcome is unknown (its
host did not confirm it in time) exits OUTCOME_UNKNOWN_EXIT (3), not 1.

`vxmesh controller ...` and `vxmesh agent ...` become the daemon itself
(`python -m controller ...`, `python -m agent ...`, by exec: same process,
same pid for systemd), so the CLI never imports a daemon's code and the
daemons parse their own options.
"""
from __future__ import annotations

import os
import sys
import time

# Nothing else at the top: `--version` and the daemons need no more, and each
# command imports what it uses (tests/unit/test_cli_startup.py checks it).
from cli.early import DAEMONS, VERSION_FLAGS, version_line

# Set to 1, the command writes one timing event (proto/timing.py) to stderr
# as it exits: when it was entered, had its imports, had its channel, had its
# answer. bench_attach splits the CLI's share of an attach with them.
TIMING_ENV = "VXMESH_TIMING"


def main(argv: list[str] | None = None) -> int:
    entered = time.time()
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DAEMONS:
        run_daemon(argv[0], argv[1:])
    if len(argv) == 1 and argv[0] in VERSION_FLAGS:
        print(version_line())   # before the parser: the whole command is the interpreter's start-up
        return 0
    stamps: dict[str, float | str] = {"entered": entered}
    try:
        return _main(argv, stamps)
    finally:
        if os.environ.get(TIMING_ENV) == "1":
            _emit_stamps(stamps)


def _main(argv: list[str], stamps: dict[str, float | str]) -> int:
    import asyncio

    from cli.options import CliError, OutcomeUnknownError
    from cli.parser import build_parser
    from proto.errors import OUTCOME_UNKNOWN_EXIT, UserError
    args = build_parser(argv).parse_args(argv)
    stamps["command"] = args.command
    try:
        if args.command == "certs":
            from cli import certs
            return certs.run(args)
        if args.command == "cni":
            from cli import cni_install
            return cni_install.run(args)
        return asyncio.run(user_command(args, stamps))
    except OutcomeUnknownError as err:
        # Not a refusal: the change may have been made. Its own exit code, so a
        # script can tell "it did not happen" from "find out whether it did".
        print(f"Error: {err}", file=sys.stderr)
        return OUTCOME_UNKNOWN_EXIT
    except (CliError, UserError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        if not _is_tls_error(err):
            raise
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _is_tls_error(err: Exception) -> bool:
    """Whether `err` is transport/tls.py's TlsError (TLS files that cannot be used).
    Asked this way so that a command on the unix socket never loads that module
    (and cryptography's types with it): if it was not loaded, nothing raised one."""
    tls = sys.modules.get("transport.tls")
    return tls is not None and isinstance(err, tls.TlsError)


async def user_command(args, stamps: dict[str, float | str] | None = None) -> int:
    from cli.commands import CHANNEL, SERVICES, command
    from cli.connection import ControllerChannel, transport_for
    from cli.retry import call_with_retry
    from cli.stubs import Stub
    stamps = {} if stamps is None else stamps
    stamps["imported"] = time.time()

    run_command = command(args.command)   # its module imported before the channel is made

    async def attempt(address: str) -> int:
        async with ControllerChannel(address, transport_for(args, address)) as channel:
            stamps["connected"] = time.time()
            service = SERVICES.get(args.command, "Controller")
            stub = channel if service == CHANNEL else Stub(channel, service)
            code = await run_command(stub, args)
            stamps["answered"] = time.time()
            return code

    return await call_with_retry(args, attempt)


def _emit_stamps(stamps: dict[str, float | str]) -> None:
    from proto import timing
    print(timing.line(timing.CLI, **stamps), file=sys.stderr, flush=True)


def run() -> None:
    """The `vxmesh` program: main(), then out at once.

    The interpreter's own shutdown (gRPC's core, every module torn down)
    costs some 50 ms of CPU after the answer is printed, a tenth of a whole
    `vxmesh ps`, and nothing is left for it to do: every command has written
    and closed what it writes before main() returns. So the output is
    flushed and the process ends there. Tests call main(), which returns."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1   # a reader that went away (`vxmesh ps | head -0`): as Python's own exit says
    os._exit(code)


def run_daemon(name: str, argv: list[str]) -> None:
    """Become `python -m NAME ARGV`: never returns."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", name, *argv])


if __name__ == "__main__":
    run()
