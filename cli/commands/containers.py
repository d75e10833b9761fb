"""`vxmesh run|ps|inspect|exec|logs|stop|start|kill|rm`: containers."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING

import grpc

from cli.commands.common import RPC_TIMEOUT
from cli.retry import broken
from cli.options import CliError, parse_command, parse_labels, parse_env, parse_port, parse_signal, parse_size, parse_volume
from proto import capabilities, image_ref, network_mode
from proto import vxmesh_pb2 as pb
from proto.network_mode import NetworkMode
from proto.errors import UserError
from proto.records import ContainerSpec, Network
from proto.run_options import parse_restart, parse_security_opts, parse_ulimit

if TYPE_CHECKING:   # the annotations' stubs; the commands get cli/stubs.py's
    from proto import vxmesh_pb2_grpc as pb_grpc

# The listings' and templates' code (cli/listing.py, output.py, templates.py) is
# imported by the commands that print them: `run -d`, on every attach's path,
# loads none of it (tests/unit/test_cli_startup.py).


def run_request(args: argparse.Namespace) -> pb.RunRequest:
    """The request `run` sends; every option is checked here first (a seccomp
    profile file is read here, as Docker's client reads it)."""
    ports = [parse_port(p) for p in args.publish]
    if ports and NetworkMode.parse(args.network).kind == network_mode.HOST:
        # Docker's behaviour: the container already uses the host's ports.
        print("WARNING: published ports are discarded when using host network mode", file=sys.stderr)
        ports = []
    image_ref.parse(args.image)
    security = parse_security_opts(args.security_opt)
    restart_policy, restart_max = parse_restart(args.restart)
    entrypoint = args.entrypoint
    return pb.RunRequest(
        name=args.name, host=args.host, networks=args.network, hostname=args.hostname,
        env=parse_env(args.env), command=list(args.cmd), ports=[p.to_wire() for p in ports],
        mounts=[parse_volume(v).to_wire() for v in args.volume],
        memory_bytes=parse_size(args.memory) if args.memory else 0, cpus=args.cpus,
        pids_limit=args.pids_limit, image=args.image,
        # Docker takes --entrypoint as one word; "" clears the image's.
        entrypoint=[entrypoint] if entrypoint else [], entrypoint_set=entrypoint is not None,
        working_dir=args.workdir, user=args.user, read_only=args.read_only,
        cap_add=[capabilities.canonical(c) for c in args.cap_add],
        cap_drop=[capabilities.canonical(c) for c in args.cap_drop], privileged=args.privileged,
        seccomp=security.seccomp, seccomp_profile=security.seccomp_profile,
        allow_new_privileges=not security.no_new_privileges,
        ulimits=[parse_ulimit(u).to_wire() for u in args.ulimit], aliases=args.network_alias, ip=args.ip,
        publish_all=args.publish_all, expose=args.expose, labels=parse_labels(args.label), auto_remove=args.rm,
        detach=args.detach, request_id=args.request_id,
        restart_policy=restart_policy, restart_max_retries=restart_max,
        interactive=args.interactive, tty=args.tty, no_healthcheck=args.no_healthcheck)


# Docker's exit statuses of `run` when no container command ran.
EXIT_RUN_FAILED = 125        # the run itself failed (options, daemon, start)
EXIT_CANNOT_EXECUTE = 126    # the command exists but cannot be run
EXIT_NOT_FOUND = 127         # the command does not exist
# How long a foreground run waits for the host's report of the exit after the output ended.
EXIT_REPORT_SECONDS = 15.0


def run_failure_status(message: str) -> int:
    """The exit status of a failed run, from the runtime's reason as Docker tells them apart."""
    text = message.lower()
    if "failed to start" in text:
        if "permission denied" in text:
            return EXIT_CANNOT_EXECUTE
        if "not found" in text or "no such file" in text:
            return EXIT_NOT_FOUND
    return EXIT_RUN_FAILED


async def run(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    if args.interactive and args.tty and not args.detach and not os.isatty(sys.stdin.fileno()):
        print("Error: the input device is not a TTY", file=sys.stderr)   # as Docker's, exit 1
        return 1
    try:
        request = run_request(args)
    except (CliError, UserError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return EXIT_RUN_FAILED
    try:
        detail = await api.Run(request, timeout=RPC_TIMEOUT)
    except grpc.aio.AioRpcError as err:
        if broken(err) or err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise   # not an answer: cli/retry.py tries again, or says the outcome is unknown
        message = err.details() or err.code().name
        print(f"Error: {message}", file=sys.stderr)
        return run_failure_status(message)
    if args.detach:
        print(detail.spec.id)
        return 0
    name = detail.spec.name
    try:
        return await _attached(api, name, args.interactive, args.tty,
                               api.Logs(pb.LogsRequest(container=name, follow=True)))
    finally:
        if args.rm:
            await api.Remove(pb.NameRequest(name=name, force=True), timeout=RPC_TIMEOUT)


async def attach(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    """As `docker attach`: the running container's output from now on, your input
    to its first process if it was run with -i (unless --no-stdin), until it
    stops; the exit code is its own."""
    detail = await api.Inspect(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
    if detail.status.state != "running":
        raise CliError(f"container {detail.spec.name} is not running: you cannot attach to a stopped container, "
                       "start it first")
    return await _attached(api, detail.spec.name, _sends_input(detail.spec, not args.no_stdin), detail.spec.tty,
                           _from_now(api, detail.spec.name))


def _sends_input(spec: pb.ContainerSpec, asked: bool) -> bool:
    """Whether your input goes to the container's first process: asked for, and the
    container run with -i; with its terminal, only from yours, as Docker says."""
    interactive = asked and spec.open_stdin
    if interactive and spec.tty and not os.isatty(sys.stdin.fileno()):
        raise CliError("the input device is not a TTY")
    return interactive


def _from_now(api: pb_grpc.ControllerStub, name: str):
    """The container's log stream from what it writes next on."""
    return api.Logs(pb.LogsRequest(container=name, follow=True, tail="0"))


async def _attached(api: pb_grpc.ControllerStub, name: str, interactive: bool, tty: bool, logs) -> int:
    """Your terminal on a running container: its log stream `logs` printed, your
    input to its own process when `interactive`, until it stops."""
    from cli import attached   # a terminal's modes: only a run in the foreground and attach need them
    attach = None
    try:
        if interactive or tty:
            # Your input (and terminal size) to the container's own process, as
            # `exec -i`/`-t` sends it to a command; its output is its log, below.
            start = pb.ExecRequest(container=name, first_process=True, tty=tty)
            start.rows, start.cols = attached.terminal_size()
            attach = asyncio.create_task(_drain(api.ExecAttached(attached.inputs(start, interactive, tty))))
        with attached.raw_terminal(tty and interactive):
            async for chunk in logs:
                sys.stdout.buffer.write(chunk.data)
                sys.stdout.buffer.flush()
        return await _exit_code(api, name)
    finally:
        if attach is not None:
            attach.cancel()


async def _drain(stream) -> None:
    """An attached stream whose answers say nothing the log and the exit code do not;
    one refused (the container already gone) leaves the log to tell."""
    with contextlib.suppress(grpc.aio.AioRpcError):
        async for _ in stream:
            pass


async def _exit_code(api: pb_grpc.ControllerStub, name: str) -> int:
    """The container's exit code, once its host has reported the exit."""
    deadline = asyncio.get_running_loop().time() + EXIT_REPORT_SECONDS
    while True:
        detail = await api.Inspect(pb.NameRequest(name=name), timeout=RPC_TIMEOUT)
        if detail.status.state != "running":
            return detail.status.exit_code
        if asyncio.get_running_loop().time() > deadline:
            raise CliError(f"container {name!r} stopped writing but its host has not reported its exit")
        await asyncio.sleep(0.1)


async def ps(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    from cli.listing import container_fields, container_filter
    from cli.output import container_json, container_rows
    reply = await api.ListContainers(pb.ListContainersRequest(all=args.all), timeout=RPC_TIMEOUT)
    # Newest first, as `docker ps`.
    matches = container_filter(args.filter)
    items = [c for c in sorted((container_json(d) for d in reply.containers), key=lambda c: -c["created_at"])
             if matches(c)]
    if args.quiet:
        print("\n".join(c["id"][:12] for c in items))
    elif args.format == "json":
        print(json.dumps(items, indent=2))
    elif args.format and args.format != "table":
        from cli.templates import render_all
        print(render_all(args.format, [container_fields(c) for c in items]))
    else:
        print(container_rows(items))
    return 0


async def inspect(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    """As `docker inspect`: a JSON array of the containers found (or the template
    applied to each), an error line for each one not found, exit 1 if any was not."""
    from cli.output import container_inspect_json
    reply = await api.ListNetworks(pb.Empty(), timeout=RPC_TIMEOUT)
    networks = {n.name: n for n in (Network.from_wire(w) for w in reply.networks)}
    return await inspect_each(args, lambda name: api.Inspect(pb.NameRequest(name=name), timeout=RPC_TIMEOUT),
                              lambda detail: container_inspect_json(detail, networks))


async def inspect_each(args: argparse.Namespace, fetch, to_json) -> int:
    found, failed = [], False
    for name in args.names:
        try:
            found.append(to_json(await fetch(name)))
        except grpc.aio.AioRpcError as err:
            if broken(err):
                raise   # not an answer: cli/retry.py tries again
            print(f"Error: {err.details() or err.code().name}", file=sys.stderr)
            failed = True
    if not found:
        return 1   # the error lines say it all
    if args.format:
        from cli.templates import render
        print("\n".join(render(args.format, item) for item in found))
    else:
        print(json.dumps(found, indent=2))
    return 1 if failed else 0


async def exec_(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    from cli import attached   # a terminal's modes: not needed by the other commands
    code = 0
    request = pb.ExecRequest(container=args.name, command=parse_command(args))
    if args.interactive or args.tty:
        request.tty = args.tty
        request.rows, request.cols = attached.terminal_size()
        # As Docker: -t alone gives a terminal but keeps your input to yourself.
        stream = api.ExecAttached(attached.inputs(request, args.interactive, args.tty))
    else:
        stream = api.Exec(request, timeout=RPC_TIMEOUT)
    with attached.raw_terminal(args.tty and args.interactive):
        async for out in stream:
            if out.stdout:
                sys.stdout.buffer.write(out.stdout)
                sys.stdout.buffer.flush()
            if out.stderr:
                sys.stderr.buffer.write(out.stderr)
                sys.stderr.buffer.flush()
            if out.exited:
                code = out.exit_code
    return code


async def logs(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    async for chunk in api.Logs(pb.LogsRequest(container=args.name, follow=args.follow, tail=args.tail),
                                timeout=None if args.follow else RPC_TIMEOUT):
        sys.stdout.buffer.write(chunk.data)
    sys.stdout.buffer.flush()
    return 0


async def each(args: argparse.Namespace, action) -> int:
    """Do `action(name, request_id)` for every container named, as Docker: each
    one's name on success, one error line per failure, and exit 1 if any failed.
    Each name's change has its own request id, derived from the command's, so a
    retried command (cli/retry.py) repeats none of them."""
    failed = False
    request_id = getattr(args, "request_id", "")
    for index, name in enumerate(args.names):
        try:
            await action(name, request_id if len(args.names) == 1 or not request_id else f"{request_id}-{index}")
            print(name)
        except grpc.aio.AioRpcError as err:
            if broken(err) or err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise   # not an answer: cli/retry.py tries again, or says the outcome is unknown
            print(f"Error: {err.details() or err.code().name}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


async def stop(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    return await each(args, lambda name, request_id: api.Stop(
        pb.StopRequest(name=name, timeout=args.time, request_id=request_id), timeout=RPC_TIMEOUT + args.time))


async def start(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    if args.attach or args.interactive:
        if len(args.names) != 1:
            raise CliError("you cannot start and attach multiple containers at once")
        return await _start_attached(api, args.names[0], args.interactive, args.request_id)
    return await each(args, lambda name, request_id: api.Start(
        pb.NameRequest(name=name, request_id=request_id), timeout=RPC_TIMEOUT))


async def _start_attached(api: pb_grpc.ControllerStub, name: str, interactive: bool, request_id: str) -> int:
    """As `docker start -a` (`-i`: with your input): the output of the run it starts,
    from its first byte, until it stops; the exit code is the container's. The log
    stream is opened first and the container started once the agent holds it, so
    nothing it writes at once is missed."""
    detail = await api.Inspect(pb.NameRequest(name=name), timeout=RPC_TIMEOUT)
    name = detail.spec.name
    interactive = _sends_input(detail.spec, interactive)
    if detail.status.state == "running":   # as Docker's: attached to it as it is
        return await _attached(api, name, interactive, detail.spec.tty, _from_now(api, name))
    logs = api.Logs(pb.LogsRequest(container=name, follow=True, tail="0", wait_start=True))
    await anext(aiter(logs), None)   # the agent's empty chunk: it holds the log now
    await api.Start(pb.NameRequest(name=name, request_id=request_id), timeout=RPC_TIMEOUT)
    return await _attached(api, name, interactive, detail.spec.tty, logs=logs)


async def kill(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    signal = parse_signal(args.signal)
    return await each(args, lambda name, _: api.Kill(pb.KillRequest(container=name, signal=signal),
                                                     timeout=RPC_TIMEOUT))


async def rm(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    return await each(args, lambda name, request_id: api.Remove(
        pb.NameRequest(name=name, force=args.force, request_id=request_id), timeout=RPC_TIMEOUT))


async def port(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    """As `docker port`: each mapping "80/tcp -> 0.0.0.0:32768", or one port's host side."""
    detail = await api.Inspect(pb.NameRequest(name=args.name), timeout=RPC_TIMEOUT)
    spec = ContainerSpec.from_wire(detail.spec)
    wanted = ""
    if args.port:
        number, _, protocol = args.port.partition("/")
        wanted = f"{number}/{protocol or 'tcp'}"
    lines = [(f"{p.container_port}/{p.protocol}", f"0.0.0.0:{p.host_port}") for p in spec.ports]
    if wanted:
        found = [host for container, host in lines if container == wanted]
        if not found:
            raise CliError(f"no public port '{wanted}' published for {spec.name}")
        print("\n".join(found))
    else:
        print("\n".join(f"{container} -> {host}" for container, host in lines))
    return 0


COMMANDS = {"ls": ps, "list": ps, "port": port, "run": run, "ps": ps, "inspect": inspect, "exec": exec_, "logs": logs, "attach": attach, "stop": stop,
            "start": start, "kill": kill, "rm": rm}
