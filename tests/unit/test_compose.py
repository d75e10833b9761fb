"""Compose files for `stack deploy` (cli/compose.py), pure."""
from __future__ import annotations

import pytest

from cli.compose import parse
from cli.options import CliError
from proto.records import PortMapping

FILE = """
version: "3.8"
services:
  web:
    image: busybox
    command: httpd -f -p 80
    environment: [A=1, B=two]
    ports:
      - "8080:80"
      - {published: 5353, target: 53, protocol: udp}
    networks: [front]
    healthcheck: {test: [CMD, wget, -qO-, "http://localhost/"], interval: 2s, retries: 5}
    deploy:
      replicas: 3
      endpoint_mode: dnsrr
      restart_policy: {condition: on-failure, delay: 500ms, max_attempts: 4}
      placement: {constraints: [node.hostname==h2]}
      update_config: {parallelism: 2, delay: 5s}
  agent:
    image: busybox
    deploy: {mode: global}
    healthcheck: {disable: true}
networks:
  front:
    driver: overlay
    ipam: {config: [{subnet: 10.60.0.0/24}]}
"""


def test_the_subset_becomes_service_specs_named_after_the_stack():
    stack = parse(FILE, "shop")
    assert [(n.name, n.subnet) for n in stack.networks] == [("shop_front", "10.60.0.0/24")]
    agent, web = stack.services
    assert (agent.name, agent.mode, agent.replicas, agent.stack) == ("shop_agent", "global", 0, "shop")
    assert web.command == ["httpd", "-f", "-p", "80"] and web.env == {"A": "1", "B": "two"}
    assert web.ports == [PortMapping("tcp", 8080, 80), PortMapping("udp", 5353, 53)]
    assert web.networks == ["shop_front"] and web.replicas == 3 and web.endpoint_mode == "dnsrr"
    assert (web.restart_condition, web.restart_delay, web.restart_max_attempts) == ("on-failure", 0.5, 4)
    assert web.constraints == ["node.hostname==h2"]
    assert (web.update_parallelism, web.update_delay) == (2, 5.0)
    assert (web.health_cmd, web.health_interval, web.health_retries) == ("wget -qO- http://localhost/", 2.0, 5)
    # disable: not even the image's HEALTHCHECK
    assert (web.no_healthcheck, agent.no_healthcheck, agent.health_cmd) == (False, True, "")


def test_a_network_without_a_subnet_leaves_it_to_the_address_pools():
    text = FILE.replace("    ipam: {config: [{subnet: 10.60.0.0/24}]}\n", "")
    assert [(n.name, n.subnet) for n in parse(text, "shop").networks] == [("shop_front", "")]
    two = FILE.replace("[{subnet: 10.60.0.0/24}]", "[{subnet: 10.60.0.0/24}, {subnet: 10.61.0.0/24}]")
    with pytest.raises(CliError, match="networks.front.ipam.config: one subnet at most"):
        parse(two, "shop")


def test_every_problem_is_reported_at_once():
    text = FILE.replace("    image: busybox\n    deploy: {mode: global}",
                        "    build: .\n    deploy: {mode: global, resources: {}}")
    text = text.replace("    networks: [front]\n", "    networks: [front, back]\n    secrets: [x]\n")
    text = text.replace("    ipam: {config: [{subnet: 10.60.0.0/24}]}", "    attachable: true")
    with pytest.raises(CliError) as caught:
        parse(text, "shop")
    message = str(caught.value)
    for problem in ("services.agent.build: not supported", "services.agent.image: missing",
                    "services.agent.deploy.resources: not supported", "services.web.secrets: not supported",
                    "services.web.networks: 'back' is not among the file's networks",
                    "networks.front.attachable: not supported"):
        assert problem in message, message


def test_not_yaml_or_not_a_mapping_is_refused():
    with pytest.raises(CliError, match="not valid YAML"):
        parse("services: [", "s")
    with pytest.raises(CliError, match="must be a mapping"):
        parse("- a", "s")
