"""What scripts read from the CLI: --format templates, ps filters, the management-command forms."""
from __future__ import annotations

import json

import pytest

from cli.listing import container_fields, container_filter
from cli.options import CliError
from cli.parser import build_parser
from cli.templates import render, render_all

CONTAINER = {"id": "ab" * 32, "name": "web1", "image": "busybox:latest", "host": "h1", "state": "running",
             "exit_code": 0, "created_at": 0.0, "started_at": 0.0, "finished_at": 0.0, "command": ["sleep", "1"],
             "entrypoint": None, "network_mode": "default", "networks": {"blue": {"ip": "10.77.0.2", "mac": "m"}},
             "ports": ["0.0.0.0:8080->80/tcp"], "exposed_ports": [], "labels": {"tier": "front"}}


def test_templates_as_scripts_write_them():
    fields = container_fields(CONTAINER)
    assert render("{{.Names}}\\t{{.ID}}", fields) == "web1\tabababababab"
    assert render("{{.Networks}} {{.ExitCode}} {{upper .State}}", fields) == "blue:10.77.0.2 0 RUNNING"
    # inspect's items are the JSON itself: nested fields.
    assert render("{{.networks.blue.ip}}", CONTAINER) == "10.77.0.2"
    assert json.loads(render("{{json .}}", CONTAINER)) == CONTAINER
    assert render("{{json .Labels}}", CONTAINER) == '{"tier": "front"}'
    assert render_all("table {{.Names}}\\t{{.Ports}}", [fields]) == \
        "NAMES   PORTS\nweb1    0.0.0.0:8080->80/tcp"
    with pytest.raises(CliError, match="there is no field 'Nope'"):
        render("{{.Nope}}", fields)
    with pytest.raises(CliError, match="function 'nosuch' not defined"):
        render("{{nosuch .Names}}", fields)


@pytest.mark.parametrize("filters,kept", [
    ([], True), (["name=eb"], True), (["name=db"], False), (["id=abab"], True), (["status=exited"], False),
    (["status=exited", "status=running"], True), (["network=blue"], True), (["network=red"], False),
    (["host=h1"], True), (["label=tier"], True), (["label=tier=back"], False), (["name=web", "host=h2"], False),
])
def test_ps_filters(filters, kept):
    assert container_filter(filters)(CONTAINER) is kept


def test_a_bad_filter_is_one_line():
    with pytest.raises(CliError, match="invalid filter 'colour=red'"):
        container_filter(["colour=red"])


@pytest.mark.parametrize("argv,command", [
    (["container", "ls", "-q"], "ls"), (["container", "list"], "list"), (["container", "ps", "-a"], "ps"),
    (["container", "rm", "-f", "a", "b"], "rm"), (["container", "inspect", "a"], "inspect"),
    (["container", "run", "-d", "busybox"], "run"), (["network", "list"], "network"),
])
def test_management_command_forms(argv, command):
    assert build_parser().parse_args(argv).command == command
