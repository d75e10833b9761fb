"""What scripts read from the CLI: --format templates, ps filters, the management-command forms."""
from __future__ import annotations

import json
import re

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


def docker_shaped():
    """What `inspect` and `network inspect` print for a container on two networks."""
    from cli.output import container_inspect_json, network_json
    from proto import vxmesh_pb2 as pb
    from proto.records import (Attachment, ContainerSpec, ContainerStatus, Endpoint, Network, PortMapping)
    blue = Network("blue", "10.77.0.0/24", "10.77.0.1", 4096, id="b" * 64, scope="global",
                   ip_range="10.77.0.128/25", labels={"env": "dev"}, attachable=True)
    red = Network("red", "10.78.0.0/24", "10.78.0.1", 0, driver="bridge", id="c" * 64, scope="local")
    spec = ContainerSpec(id="ab" * 32, name="web1", host="h1", command=["sleep", "1"], env={"A": "1"},
                         attachments=[Attachment("blue", "10.77.0.2", "02:42:0a:4d:00:02", ["web"]),
                                      Attachment("red", "10.78.0.2", "02:42:0a:4e:00:02")],
                         ports=[PortMapping("tcp", 8080, 80), PortMapping("tcp", 32768, 81, dynamic=True)],
                         exposed_ports=["80/tcp", "443/tcp"], memory_bytes=1 << 26, cpus=0.5,
                         restart_policy="on-failure", restart_max_retries=3, image="docker.io/library/busybox:latest",
                         labels={"tier": "front"}, created_at=1.5, health_cmd="true")
    status = ContainerStatus(name="web1", id=spec.id, state="exited", exit_code=3, pid=0, started_at=1.5,
                             finished_at=2.5, health="unhealthy")
    container = container_inspect_json(pb.ContainerDetail(spec=spec.to_wire(), status=status.to_wire()),
                                       {"blue": blue, "red": red})
    endpoint = Endpoint("blue", "web1", "h1", "192.0.2.1", "10.77.0.2", "02:42:0a:4d:00:02", spec.id, "web")
    network = network_json(pb.NetworkDetail(network=blue.to_wire(), endpoints=[endpoint.to_wire()]))
    return container, network


def test_inspect_has_dockers_structure_and_names():
    container, network = docker_shaped()
    assert (container["Id"], container["Name"], container["Created"]) == \
        ("ab" * 32, "/web1", "1970-01-01T00:00:01.500000000Z")
    assert container["State"] == {"Status": "exited", "Running": False, "Paused": False, "Restarting": False,
                                  "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 3, "Error": "",
                                  "StartedAt": "1970-01-01T00:00:01.500000000Z",
                                  "FinishedAt": "1970-01-01T00:00:02.500000000Z", "Health": {"Status": "unhealthy"}}
    config, host = container["Config"], container["HostConfig"]
    assert (config["Image"], config["Cmd"], config["Env"], config["Hostname"], config["Labels"]) == \
        ("busybox:latest", ["sleep", "1"], ["A=1"], "web1", {"tier": "front"})
    assert config["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}}
    assert (host["NetworkMode"], host["RestartPolicy"], host["Memory"], host["NanoCpus"]) == \
        ("blue", {"Name": "on-failure", "MaximumRetryCount": 3}, 1 << 26, 500_000_000)
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                    "81/tcp": [{"HostIp": "", "HostPort": ""}]}
    settings = container["NetworkSettings"]
    assert settings["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                 "81/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}], "443/tcp": None}
    assert settings["Networks"]["blue"] == {"IPAMConfig": None, "Aliases": ["web"], "NetworkID": "b" * 64,
                                            "Gateway": "10.77.0.1", "IPAddress": "10.77.0.2", "IPPrefixLen": 24,
                                            "MacAddress": "02:42:0a:4d:00:02"}
    assert container["Vxmesh"]["Host"] == "h1"
    assert (network["Name"], network["Id"], network["Driver"], network["Scope"]) == ("blue", "b" * 64, "overlay", "swarm")
    assert network["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1", "IPRange": "10.77.0.128/25"}]
    assert (network["Internal"], network["Attachable"], network["Labels"]) == (False, True, {"env": "dev"})
    assert network["Containers"] == {"ab" * 32: {"Name": "web1", "MacAddress": "02:42:0a:4d:00:02",
                                                 "IPv4Address": "10.77.0.2/24", "IPv6Address": ""}}
    assert network["Options"] == {"com.docker.network.driver.overlay.vxlanid_list": "4096"}
    assert network["Vxmesh"]["Containers"] == {"ab" * 32: {"Host": "h1", "Engine": ""}}


def test_the_templates_scripts_use_on_inspect():
    container, network = docker_shaped()
    assert render("{{.State.Status}} {{.State.ExitCode}}", container) == "exited 3"
    assert render("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container) == "10.77.0.2 10.78.0.2 "
    assert render("{{.NetworkSettings.Networks.blue.IPAddress}}", container) == "10.77.0.2"
    assert render("{{range .IPAM.Config}}{{.Subnet}}{{end}}", network) == "10.77.0.0/24"
    assert render("{{range .Containers}}{{.Name}}={{.IPv4Address}}{{end}}", network) == "web1=10.77.0.2/24"
    assert render("{{if .State.Running}}up{{else}}down{{end}}", container) == "down"
    assert render("{{range .Mounts}}{{.Source}}{{else}}no mounts{{end}}", container) == "no mounts"
    assert render("{{range .Args}}[{{.}}]{{end}}", container) == "[1]"
    for broken, message in (("{{range .Args}}x", "without {{end}}"), ("{{end}}", "unexpected {{end}}"),
                            ("{{range .State.Pid}}x{{end}}", "range can't iterate over 0")):
        with pytest.raises(CliError, match=re.escape(message)):
            render(broken, container)
