"""`--ulimit` and `--security-opt` as Docker reads them, for the CLI to check and the agent to apply.

    --ulimit nofile=1024:2048      soft:hard (one number sets both; -1 = unlimited)
    --security-opt seccomp=unconfined | seccomp=PROFILE.json | no-new-privileges[=true|false]

A seccomp profile file is read where the option is given (the CLI's
machine, as Docker's client reads it) and travels as JSON text: the host
that runs the container need not have the file.

Standard library only.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from proto.errors import InvalidArgument
from proto.records import Ulimit

# Docker's --ulimit names, each a setrlimit(2) resource.
ULIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
UNLIMITED = -1

SECCOMP_DEFAULT = "default"
SECCOMP_UNCONFINED = "unconfined"
SECCOMP_PROFILE = "profile"


RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")


def parse_restart(text: str) -> tuple[str, int]:
    """Docker's --restart: no, on-failure[:MAX], always, unless-stopped -> (policy, max retries)."""
    policy, sep, count = text.partition(":")
    if policy not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid --restart {text!r}: use no, on-failure[:MAX], always or unless-stopped")
    if sep and policy != "on-failure":
        raise InvalidArgument(f"invalid --restart {text!r}: only on-failure takes a maximum")
    if sep and not count.isdigit():
        raise InvalidArgument(f"invalid --restart {text!r}: the maximum is a number of restarts")
    return policy, int(count) if sep else 0


def restarts(policy: str, max_retries: int, exit_code: int, restart_count: int) -> bool:
    """Whether a container that exited with `exit_code` is started again by its policy."""
    if policy in ("always", "unless-stopped"):
        return True
    if policy == "on-failure":
        return exit_code != 0 and (not max_retries or restart_count < max_retries)
    return False


def parse_ulimit(text: object) -> Ulimit:
    if not isinstance(text, str) or "=" not in text:
        raise InvalidArgument(f"invalid ulimit {text!r}: use NAME=SOFT[:HARD], e.g. nofile=1024:2048")
    name, _, values = text.partition("=")
    if name not in ULIMIT_NAMES:
        raise InvalidArgument(f"invalid ulimit {text!r}: unknown name {name!r} "
                              f"(one of {', '.join(ULIMIT_NAMES)})")
    soft_text, _, hard_text = values.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise InvalidArgument(f"invalid ulimit {text!r}: limits must be integers (-1 = unlimited)") \
            from None
    return check_ulimit(Ulimit(name, soft, hard), repr(text))


def check_ulimit(ulimit: Ulimit, shown: str = "") -> Ulimit:
    """A ulimit however it arrived (typed, or off the wire): a known name, soft <= hard."""
    shown = shown or repr(ulimit.text)
    if ulimit.name not in ULIMIT_NAMES:
        raise InvalidArgument(f"invalid ulimit {shown}: unknown name {ulimit.name!r} "
                              f"(one of {', '.join(ULIMIT_NAMES)})")
    for value in (ulimit.soft, ulimit.hard):
        if value < UNLIMITED:
            raise InvalidArgument(f"invalid ulimit {shown}: {value} is below -1")
    if ulimit.hard != UNLIMITED and (ulimit.soft == UNLIMITED or ulimit.soft > ulimit.hard):
        raise InvalidArgument(f"invalid ulimit {shown}: the soft limit must not exceed the hard limit")
    return ulimit


def check_ulimits(ulimits: Iterable[Ulimit]) -> None:
    """Every one valid, and no resource given twice."""
    names = [check_ulimit(u).name for u in ulimits]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidArgument(f"--ulimit {', '.join(twice)} is given twice")


@dataclass(frozen=True)
class SecurityOptions:
    seccomp: str = SECCOMP_DEFAULT       # default | unconfined | profile
    seccomp_profile: str = ""            # the profile's JSON text, when seccomp == "profile"
    no_new_privileges: bool = True


def parse_security_opts(options: Iterable[str],
                        read_file: Callable[[Path], str] = Path.read_text) -> SecurityOptions:
    """--security-opt values; `read_file` reads a seccomp profile named by path."""
    seccomp, profile, no_new_privileges = SECCOMP_DEFAULT, "", True
    for option in options:
        if not isinstance(option, str):
            raise InvalidArgument(f"invalid --security-opt {option!r}")
        key, sep, value = _split(option)
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise InvalidArgument(f"invalid --security-opt {option!r}: use "
                                      "no-new-privileges, no-new-privileges=true or =false")
            no_new_privileges = value != "false"
        elif key == "seccomp" and sep:
            if value == SECCOMP_UNCONFINED:
                seccomp, profile = SECCOMP_UNCONFINED, ""
            elif value == SECCOMP_DEFAULT:
                seccomp, profile = SECCOMP_DEFAULT, ""
            else:
                seccomp, profile = SECCOMP_PROFILE, _read_profile(Path(value), read_file)
        else:
            raise InvalidArgument(f"unsupported --security-opt {option!r}: use seccomp=unconfined, "
                                  "seccomp=PROFILE.json or no-new-privileges[=true|false]")
    return SecurityOptions(seccomp, profile, no_new_privileges)


def check_seccomp(seccomp: str, profile: str) -> None:
    """A container's seccomp setting as stored: a mode, and a profile only in "profile" mode."""
    if seccomp == SECCOMP_PROFILE:
        check_seccomp_profile(profile)
    elif seccomp not in (SECCOMP_DEFAULT, SECCOMP_UNCONFINED):
        raise InvalidArgument(f"seccomp {seccomp!r} is not one of {SECCOMP_DEFAULT}, "
                              f"{SECCOMP_UNCONFINED}, {SECCOMP_PROFILE}")
    elif profile:
        raise InvalidArgument(f"a seccomp profile was given with seccomp {seccomp!r}")


def check_seccomp_profile(text: str, where: str = "seccomp profile") -> dict:
    """The profile as a JSON object with a defaultAction and a list of syscall rules."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"{where} is not JSON: {e}") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
        raise InvalidArgument(f"{where} must be a JSON object with a \"defaultAction\"")
    if not isinstance(profile.get("syscalls", []), list):
        raise InvalidArgument(f"{where}: \"syscalls\" must be a list")
    return profile


def _split(option: str) -> tuple[str, str, str]:
    # Docker still accepts the old "seccomp:unconfined" spelling.
    separator = "=" if "=" in option else ":" if ":" in option else "="
    return option.partition(separator)


def _read_profile(path: Path, read_file: Callable[[Path], str]) -> str:
    try:
        text = read_file(path)
    except OSError as e:
        raise InvalidArgument(f"cannot read seccomp profile {path}: {e.strerror or e}") from None
    check_seccomp_profile(text, f"seccomp profile {path}")
    return text
