"""How the CLI starts: `--version` answered before anything heavy is imported,
the version the same as the installed package's, and the timing stamps a
benchmark asks for with VXMESH_TIMING=1."""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from cli.early import VERSION
from proto import timing

REPO = Path(__file__).resolve().parents[2]


def test_version_is_the_installed_packages():
    assert VERSION == importlib.metadata.version("vxmesh")


@pytest.mark.parametrize("argv", [["--version"], ["-v"], ["--insecure", "--version"]])
def test_version_prints_one_line_as_docker(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as done:   # after other options it is argparse's version action
        code = done.code
    assert code == 0
    assert capsys.readouterr().out == f"vxmesh version {VERSION}\n"


def _modules_after(argv: list[str], env: dict[str, str] | None = None) -> tuple[set[str], str]:
    probe = ("import sys, json\nfrom cli.main import main\ncode = main(sys.argv[1:])\n"
             "print(json.dumps(sorted(sys.modules)), file=sys.stdout)\n")
    proc = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=60)
    return set(json.loads(proc.stdout.splitlines()[-1])), proc.stderr


def test_version_imports_neither_grpc_nor_protobuf_nor_the_records():
    loaded, _ = _modules_after(["--version"])
    assert not {"grpc", "google.protobuf", "proto.records", "proto.vxmesh_pb2", "cryptography"} & loaded


def test_timing_stamps_on_stderr_only_when_asked():
    unreachable = ["--controller", "unix:///nonexistent/vxpa-no-controller.sock", "host", "ls"]
    # An address that fails at once: the stamps come even when the command fails.
    _, quiet = _modules_after(unreachable)
    assert timing.MARKER not in quiet
    _, err = _modules_after(unreachable, {"VXMESH_TIMING": "1"})
    (event,) = timing.events(err.splitlines(), timing.CLI)
    assert event["command"] == "host"
    assert event["entered"] <= event["imported"]


def test_every_command_is_found_in_the_module_that_defines_it():
    import importlib

    from cli.commands import MODULES, command
    from cli.parser import build_parser
    by_module: dict[str, set[str]] = {}
    for name, module in MODULES.items():
        by_module.setdefault(module, set()).add(name)
    for module, names in by_module.items():
        assert set(importlib.import_module(f"cli.commands.{module}").COMMANDS) == names, module
    def commands(parser) -> dict:
        (sub,) = parser._subparsers._group_actions
        return sub.choices
    top = commands(build_parser())
    # `vxmesh container ACTION` is dest="command" too: its actions are commands.
    parsed = set(top) | set(commands(top["container"]))
    local = {"controller", "agent", "certs", "cni", "container"}   # run in cli/main.py or exec'd
    assert parsed - local == set(MODULES)
    assert all(callable(command(name)) for name in MODULES)


def test_run_imports_neither_the_services_nor_yaml():
    loaded, _ = _modules_after(["--controller", "unix:///nonexistent/vxpa-no-controller.sock", "run", "busybox"])
    assert "proto.vxmesh_pb2" in loaded   # it did get as far as the call
    assert not {"yaml", "cli.compose", "cli.commands.stacks", "cli.commands.services", "tomllib"} & loaded
    # Nor what prints the listings: run prints an id.
    assert not {"cli.listing", "cli.output", "cli.templates"} & loaded


def test_ps_and_run_on_the_unix_socket_load_neither_the_generated_stubs_nor_tls_nor_the_config_schema():
    for argv in (["ps"], ["run", "-d", "busybox"]):
        loaded, _ = _modules_after(["--controller", "unix:///nonexistent/vxas-no-controller.sock", *argv])
        assert "proto.vxmesh_pb2" in loaded   # it did get as far as the call
        assert not {"proto.vxmesh_pb2_grpc", "transport.tls", "transport.authz", "proto.config_file",
                    "cryptography", "uuid", "cli.attached"} & loaded, argv


class _RecordingChannel:
    """Records the callables a stub makes: (kind, path, serializer, deserializer)."""

    def __init__(self):
        self.made = []

    def __getattr__(self, kind):
        def make(path, request_serializer, response_deserializer, _registered_method=False):
            self.made.append((kind, path, request_serializer, response_deserializer, _registered_method))
            return (kind, path)
        return make


def test_the_lazy_stub_makes_each_method_as_the_generated_stub_does():
    from cli.stubs import Stub
    from proto import vxmesh_pb2 as pb
    from proto import vxmesh_pb2_grpc as pb_grpc
    for service in pb.DESCRIPTOR.services_by_name.values():
        generated = _RecordingChannel()
        getattr(pb_grpc, f"{service.name}Stub")(generated)
        lazy_channel = _RecordingChannel()
        lazy = Stub(lazy_channel, service.name)
        assert lazy_channel.made == []   # nothing made before it is asked for
        for method in service.methods:
            assert getattr(lazy, method.name) == getattr(lazy, method.name)   # made once, kept
        assert lazy_channel.made == generated.made, service.name
        with pytest.raises(AttributeError):
            lazy.NoSuchMethod


@pytest.mark.parametrize("argv", [
    ["ps"], ["ps", "-a", "--format", "json"], ["--controller", "ps", "ps", "-q"], ["--ca=x", "run", "-d", "busybox"],
    ["--insecure", "--key", "k", "run", "--name", "a", "-p", "80", "busybox", "sleep", "1"],
    ["container", "ls", "-a"], ["network", "create", "--subnet", "10.9.0.0/24", "n1"], ["service", "ls"],
    ["image", "ls"], ["host", "ls"], ["stop", "-t", "3", "a", "b"],
])
def test_a_parser_built_for_its_command_parses_as_the_whole_one(argv):
    from cli.parser import build_parser
    assert vars(build_parser(argv).parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_a_parser_built_for_its_command_still_lists_and_refuses_as_the_whole_one(capsys):
    from cli.parser import build_parser, command_word
    assert command_word(build_parser(), ["--controller", "run", "ps"]) == "ps"
    assert command_word(build_parser(), ["--insecure"]) is None
    for argv in (["bogus"], ["ps", "--bogus"], ["network"], ["--", "ps"], ["-", "ps"]):
        errors = []
        for parser in (build_parser(argv), build_parser()):
            with pytest.raises(SystemExit) as done:
                parser.parse_args(argv)
            errors.append((done.value.code, capsys.readouterr().err))
        assert errors[0] == errors[1]
        assert errors[0][0] == 125


def test_the_parsers_tls_directory_is_the_config_files():
    from cli.parser import TLS_DIR
    from proto.config_file import TLS_DIR as CONFIG_TLS_DIR
    assert TLS_DIR == CONFIG_TLS_DIR
