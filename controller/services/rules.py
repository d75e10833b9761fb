"""What `service create` may ask for, checked before anything is stored.

A task's container is named SERVICE.SLOT.SUFFIX (Docker's SERVICE.SLOT.TASKID,
with a shorter suffix), and container names are at most 63 characters, so a
service name leaves room for the rest.
"""
from __future__ import annotations

import secrets

from controller import request_limits
from controller.services import constraints
from controller.services.scheduling import MODES, RESTART_CONDITIONS
from controller.run_options import MIN_MEMORY
from proto import validate
from proto.errors import InvalidArgument
from proto.network_mode import NETWORKS, NetworkMode
from proto.records import ServiceSpec

MAX_SERVICE_NAME = 45          # + "." + up to 4 digits + "." + 12 hex = 63
MAX_REPLICAS = 1000
MAX_CONSTRAINTS = 16
MAX_RESTART_DELAY = 3600.0
SUFFIX_HEX = 12
ENDPOINT_MODES = ("vip", "dnsrr")
PUBLISH_MODES = ("ingress", "host")


def check(spec: ServiceSpec) -> ServiceSpec:
    """The spec as the user sent it, refused with a message naming what is wrong."""
    validate.name("service", spec.name)
    if len(spec.name) > MAX_SERVICE_NAME:
        raise InvalidArgument(f"service name {spec.name!r} is {len(spec.name)} characters "
                              f"(at most {MAX_SERVICE_NAME}: its tasks' names add a slot and a suffix)")
    mode = spec.mode or "replicated"
    if mode not in MODES:
        raise InvalidArgument(f"invalid mode {spec.mode!r}: use replicated or global")
    if spec.replicas > MAX_REPLICAS:
        raise InvalidArgument(f"{spec.replicas} replicas is too many (at most {MAX_REPLICAS})")
    condition = spec.restart_condition or "any"
    if condition not in RESTART_CONDITIONS:
        raise InvalidArgument(f"invalid restart condition {spec.restart_condition!r}: "
                              f"use one of {', '.join(RESTART_CONDITIONS)}")
    if not 0 <= spec.restart_delay <= MAX_RESTART_DELAY:
        raise InvalidArgument(f"restart delay {spec.restart_delay}s is out of range (0 to {MAX_RESTART_DELAY:.0f}s)")
    request_limits.check_count("constraints", spec.constraints, MAX_CONSTRAINTS)
    for text in spec.constraints:
        constraints.parse(text)
    request_limits.check_command(spec.command)
    request_limits.check_env(spec.env)
    request_limits.check_count("networks", spec.networks, request_limits.MAX_NETWORKS_PER_CONTAINER)
    if spec.networks and NetworkMode.parse(spec.networks).kind != NETWORKS:
        raise InvalidArgument(f"a service's tasks attach to networks; --network {spec.networks[0]} "
                              "is not one")
    if len(set(spec.networks)) != len(spec.networks):
        raise InvalidArgument("a network is given twice")
    if spec.memory_bytes and spec.memory_bytes < MIN_MEMORY:
        raise InvalidArgument(f"--limit-memory {spec.memory_bytes} is below the minimum of "
                              f"{MIN_MEMORY // (1024 * 1024)} MiB")
    if (spec.endpoint_mode or "vip") not in ENDPOINT_MODES:
        raise InvalidArgument(f"invalid endpoint mode {spec.endpoint_mode!r}: use vip or dnsrr")
    if (spec.publish_mode or "ingress") not in PUBLISH_MODES:
        raise InvalidArgument(f"invalid publish mode {spec.publish_mode!r}: use ingress or host")
    request_limits.check_count("published ports", spec.ports, request_limits.MAX_PORTS)
    seen = set()
    for port in spec.ports:
        validate.protocol(port.protocol)
        validate.port(port.host_port, "published port")
        validate.port(port.container_port, "target port")
        if (port.protocol, port.host_port) in seen:
            raise InvalidArgument(f"port {port.host_port}/{port.protocol} is published twice")
        seen.add((port.protocol, port.host_port))
    if spec.ports and (spec.publish_mode or "ingress") == "ingress" and not spec.networks:
        raise InvalidArgument("the routing mesh reaches tasks over their first network: give --network")
    if spec.health_cmd and spec.no_healthcheck:
        raise InvalidArgument("--no-healthcheck conflicts with --health-cmd")
    if spec.health_cmd:
        request_limits.check_command([spec.health_cmd], "health command")
        for what, value in (("interval", spec.health_interval), ("timeout", spec.health_timeout)):
            if not 0 < value <= MAX_RESTART_DELAY:
                raise InvalidArgument(f"--health-{what} {value}s is out of range (more than 0, at most 1h)")
        if spec.health_retries < 1:
            raise InvalidArgument("--health-retries must be 1 or more")
    if not spec.image:
        raise InvalidArgument("no image given")
    return spec


def task_name(service: ServiceSpec, slot: int, host: str) -> str:
    """SERVICE.SLOT.SUFFIX, or SERVICE.HOST.SUFFIX in global mode (cut to fit 63)."""
    suffix = secrets.token_hex(SUFFIX_HEX // 2)
    place = str(slot) if service.mode == "replicated" else host[:63 - len(service.name) - SUFFIX_HEX - 2]
    return f"{service.name}.{place}.{suffix}"
