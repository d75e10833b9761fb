"""What an image says about how to run it: the `config` of its OCI image configuration.

Only the fields a container start needs (and `image inspect` shows) are
kept, typed; the rest of the JSON stays in the store. The agent reads it
from its image store, the controller from the cluster's registry (`image
inspect`, and the ports `run` shows as exposed). Standard library only. Docker's image
configuration is the same document with a few more fields (Healthcheck is
one of them), so images saved by Docker keep their healthcheck here.
"""
from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from proto.errors import ImageError


@dataclass(frozen=True)
class Healthcheck:
    """Docker's HEALTHCHECK: durations in nanoseconds, as the image stores them (0 = default)."""
    test: tuple[str, ...]      # ["CMD", ...], ["CMD-SHELL", "..."], ["NONE"]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    retries: int = 0

    def settings(self) -> HealthSettings | None:
        """What a container runs for it, Docker's defaults for what it leaves at 0; None
        for NONE (or an empty test): no check. The exec form runs through `sh -c`
        too, its words quoted so the shell hands them over unchanged."""
        kind, *rest = self.test or ("NONE",)
        if kind == "CMD-SHELL" and rest:
            cmd = rest[0]
        elif kind == "CMD" and rest:
            cmd = shlex.join(rest)
        else:
            return None
        return HealthSettings(cmd, self.interval_ns / NS or DEFAULT_HEALTH_INTERVAL,
                              self.timeout_ns / NS or DEFAULT_HEALTH_TIMEOUT,
                              self.retries or DEFAULT_HEALTH_RETRIES, self.start_period_ns / NS)


# Docker's defaults for a HEALTHCHECK's zero fields.
DEFAULT_HEALTH_INTERVAL = 30.0
DEFAULT_HEALTH_TIMEOUT = 30.0
DEFAULT_HEALTH_RETRIES = 3
NS = 1e9


@dataclass(frozen=True)
class HealthSettings:
    """A health check as a container runs it: `sh -c cmd`, seconds and a count."""
    cmd: str
    interval: float
    timeout: float
    retries: int
    start_period: float = 0.0


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()            # "KEY=value", in the image's order
    working_dir: str = ""
    user: str = ""                       # "", "name", "uid", "name:group", "uid:gid"
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", sorted
    healthcheck: Healthcheck | None = None
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    architecture: str = ""
    os: str = ""
    created: str = ""

    @classmethod
    def from_image_json(cls, document: Any, what: str) -> ImageConfig:
        """From the image configuration blob (already JSON-decoded); `what` names it in errors."""
        if not isinstance(document, dict):
            raise ImageError(f"image {what}: its configuration is not a JSON object")
        config = document.get("config")
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ImageError(f"image {what}: its 'config' is not a JSON object")
        try:
            return cls(
                entrypoint=_strings(config.get("Entrypoint")),
                cmd=_strings(config.get("Cmd")),
                env=_strings(config.get("Env")),
                working_dir=_string(config.get("WorkingDir")),
                user=_string(config.get("User")),
                exposed_ports=tuple(sorted(_mapping(config.get("ExposedPorts")))),
                healthcheck=_healthcheck(config.get("Healthcheck")),
                labels={str(k): str(v) for k, v in _mapping(config.get("Labels")).items()},
                stop_signal=_string(config.get("StopSignal")),
                architecture=_string(document.get("architecture")),
                os=_string(document.get("os")),
                created=_string(document.get("created")),
            )
        except (TypeError, ValueError) as e:
            raise ImageError(f"image {what}: unreadable configuration: {e}") from None

    def env_dict(self) -> dict[str, str]:
        """The image's Env as a mapping (a later duplicate wins, as in Docker)."""
        return dict(entry.split("=", 1) if "=" in entry else (entry, "") for entry in self.env)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ImageConfig:
        check = data.get("healthcheck")
        return cls(**{
            **data,
            "entrypoint": tuple(data.get("entrypoint", ())),
            "cmd": tuple(data.get("cmd", ())),
            "env": tuple(data.get("env", ())),
            "exposed_ports": tuple(data.get("exposed_ports", ())),
            "healthcheck": Healthcheck(**{**check, "test": tuple(check["test"])}) if check else None,
            "labels": dict(data.get("labels", {})),
        })


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def _string(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _mapping(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {value!r}")
    return value


def _healthcheck(value: Any) -> Healthcheck | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"Healthcheck: expected an object, got {value!r}")

    def duration(key: str) -> int:
        raw = value.get(key) or 0
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise ValueError(f"Healthcheck {key}: expected nanoseconds >= 0, got {raw!r}")
        return raw
    return Healthcheck(test=_strings(value.get("Test")), interval_ns=duration("Interval"),
                       timeout_ns=duration("Timeout"), start_period_ns=duration("StartPeriod"),
                       retries=duration("Retries"))
