"""Compose files for `vxmesh stack deploy`: the version 3 subset vxmesh runs, read with PyYAML.

What a file asks for becomes, per service, the ServiceSpec `service create`
would send (named STACK_SERVICE, as Docker names them) and, per top-level
network, an overlay network STACK_NETWORK with the subnet the file gives,
or without one the controller's next free subnet of its default address
pools (as `network create` without --subnet). Every key outside the subset is reported
with its path, and nothing is deployed: a key silently ignored would be a
behaviour silently missing.

Supported: services.*.{image, command, environment, ports, networks,
healthcheck.{test, interval, timeout, retries, disable}, deploy.{replicas, mode, endpoint_mode, restart_policy.{condition,
delay, max_attempts}, placement.constraints, update_config.{parallelism,
delay}}}; networks.*.{driver (overlay), ipam.config[].subnet}; version.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from cli.options import CliError, parse_duration
from proto.records import PortMapping, ServiceSpec

_TOP = {"version", "services", "networks"}
_SERVICE = {"image", "command", "environment", "ports", "networks", "deploy", "healthcheck"}
_HEALTH = {"test", "interval", "timeout", "retries", "disable"}
_DEPLOY = {"replicas", "mode", "endpoint_mode", "restart_policy", "placement", "update_config"}
_RESTART = {"condition", "delay", "max_attempts"}
_PLACEMENT = {"constraints"}
_UPDATE = {"parallelism", "delay"}
_PORT = {"published", "target", "protocol", "mode"}
_NETWORK = {"driver", "ipam"}
_IPAM = {"config"}
_IPAM_CONFIG = {"subnet"}


@dataclass
class StackNetwork:
    name: str          # STACK_NETWORK
    subnet: str


@dataclass
class Stack:
    name: str
    services: list[ServiceSpec] = field(default_factory=list)
    networks: list[StackNetwork] = field(default_factory=list)


def parse(text: str, stack: str) -> Stack:
    """The stack `text` describes; CliError naming every problem at once."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CliError(f"the compose file is not valid YAML: {err}") from None
    problems: list[str] = []
    if not isinstance(data, dict):
        raise CliError("the compose file must be a mapping with `services`")
    _unknown(data, _TOP, "", problems)
    networks = []
    for name, body in sorted((data.get("networks") or {}).items()):
        networks.append(_network(stack, name, body or {}, problems))
    known = {n.name for n in networks}
    services = []
    for name, body in sorted((data.get("services") or {}).items()):
        services.append(_service(stack, name, body or {}, known, problems))
    if not services:
        problems.append("services: none given")
    if problems:
        raise CliError("the compose file has what vxmesh does not run:\n  " + "\n  ".join(problems))
    return Stack(stack, services, networks)


def _network(stack: str, name: str, body: dict, problems: list[str]) -> StackNetwork:
    where = f"networks.{name}"
    _unknown(body, _NETWORK, where, problems)
    if body.get("driver", "overlay") != "overlay":
        problems.append(f"{where}.driver: only overlay networks span the hosts a stack runs on")
    configs = ((body.get("ipam") or {}).get("config")) or []
    _unknown(body.get("ipam") or {}, _IPAM, f"{where}.ipam", problems)
    subnets = []
    for i, config in enumerate(configs):
        _unknown(config or {}, _IPAM_CONFIG, f"{where}.ipam.config[{i}]", problems)
        if (config or {}).get("subnet"):
            subnets.append(str(config["subnet"]))
    if len(subnets) > 1:
        problems.append(f"{where}.ipam.config: one subnet at most (a network has one)")
    return StackNetwork(f"{stack}_{name}", subnets[0] if subnets else "")


def _service(stack: str, name: str, body: dict, networks: set[str], problems: list[str]) -> ServiceSpec:
    where = f"services.{name}"
    _unknown(body, _SERVICE, where, problems)
    deploy = body.get("deploy") or {}
    _unknown(deploy, _DEPLOY, f"{where}.deploy", problems)
    restart = deploy.get("restart_policy") or {}
    _unknown(restart, _RESTART, f"{where}.deploy.restart_policy", problems)
    placement = deploy.get("placement") or {}
    _unknown(placement, _PLACEMENT, f"{where}.deploy.placement", problems)
    update = deploy.get("update_config") or {}
    _unknown(update, _UPDATE, f"{where}.deploy.update_config", problems)
    if not body.get("image"):
        problems.append(f"{where}.image: missing")
    command = body.get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    wanted = body.get("networks") or []
    wanted = list(wanted) if isinstance(wanted, (list, dict)) else [wanted]
    for net in wanted:
        if f"{stack}_{net}" not in networks:
            problems.append(f"{where}.networks: {net!r} is not among the file's networks")
    ports, modes = [], set()
    for i, port in enumerate(body.get("ports") or []):
        parsed = _port(port, f"{where}.ports[{i}]", problems)
        if parsed is not None:
            ports.append(parsed[0])
            modes.add(parsed[1])
    if len(modes) > 1:
        problems.append(f"{where}.ports: every port of a service is published in one mode")
    mode = deploy.get("mode", "replicated")
    health = body.get("healthcheck") or {}
    _unknown(health, _HEALTH, f"{where}.healthcheck", problems)
    return ServiceSpec(
        name=f"{stack}_{name}", image=str(body.get("image") or ""), command=[str(c) for c in command],
        env=_environment(body.get("environment"), where, problems),
        networks=[f"{stack}_{n}" for n in wanted], mode=mode,
        replicas=int(deploy.get("replicas", 1)) if mode == "replicated" else 0,
        restart_condition=restart.get("condition", "any"),
        restart_max_attempts=int(restart.get("max_attempts", 0)),
        restart_delay=_seconds(restart.get("delay", "1s"), f"{where}.deploy.restart_policy.delay", problems),
        constraints=[str(c) for c in placement.get("constraints") or []],
        endpoint_mode=deploy.get("endpoint_mode", "vip"), ports=ports,
        publish_mode=modes.pop() if modes else "ingress",
        update_parallelism=int(update.get("parallelism", 1)),
        update_delay=_seconds(update.get("delay", "0s"), f"{where}.deploy.update_config.delay", problems),
        stack=stack, health_cmd=_health_test(health.get("test"), f"{where}.healthcheck.test", problems),
        health_interval=_seconds(health.get("interval", "30s"), f"{where}.healthcheck.interval", problems),
        health_timeout=_seconds(health.get("timeout", "30s"), f"{where}.healthcheck.timeout", problems),
        health_retries=int(health.get("retries", 3)),
        # disable: true, or test [NONE]: not even the image's HEALTHCHECK, as compose means it.
        no_healthcheck=bool(health.get("disable")) or health.get("test") == ["NONE"])


def _health_test(test: Any, where: str, problems: list[str]) -> str:
    """Compose's healthcheck.test as the shell command the agent runs: a string, or
    [CMD-SHELL, command], or [CMD, arg...], or [NONE] (no check)."""
    if test is None:
        return ""
    if isinstance(test, str):
        return test
    if isinstance(test, list) and test and test[0] == "CMD-SHELL" and len(test) == 2:
        return str(test[1])
    if isinstance(test, list) and test and test[0] == "CMD" and len(test) > 1:
        return shlex.join(str(t) for t in test[1:])
    if test == ["NONE"]:
        return ""
    problems.append(f"{where}: a command, [CMD-SHELL, command], [CMD, arg, ...] or [NONE]")
    return ""


def _port(port: Any, where: str, problems: list[str]) -> tuple[PortMapping, str] | None:
    if isinstance(port, dict):
        _unknown(port, _PORT, where, problems)
        try:
            return (PortMapping(str(port.get("protocol", "tcp")), int(port["published"]), int(port["target"])),
                    str(port.get("mode", "ingress")))
        except (KeyError, ValueError, TypeError):
            problems.append(f"{where}: give published and target")
            return None
    text = str(port)
    ports, _, protocol = text.partition("/")
    published, sep, target = ports.partition(":")
    if not sep or not published.isdigit() or not target.isdigit():
        problems.append(f"{where}: {text!r} is not PUBLISHED:TARGET[/PROTO]")
        return None
    return PortMapping(protocol or "tcp", int(published), int(target)), "ingress"


def _environment(value: Any, where: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        env = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            env[key] = val
        return env
    problems.append(f"{where}.environment: a mapping or a list of KEY=VALUE")
    return {}


def _seconds(value: Any, where: str, problems: list[str]) -> float:
    try:
        return parse_duration(str(value), where)
    except CliError as err:
        problems.append(str(err))
        return 0.0


def _unknown(body: Any, allowed: set[str], where: str, problems: list[str]) -> None:
    if not isinstance(body, dict):
        problems.append(f"{where or 'the file'}: expected a mapping")
        return
    for key in sorted(set(body) - allowed):
        problems.append(f"{where + '.' if where else ''}{key}: not supported")
