"""The container's first process as Docker derives it from the image and `docker run`'s options.

  args: Entrypoint + Cmd. `--entrypoint` replaces the Entrypoint and, as in
        Docker, drops the image's Cmd; COMMAND [ARG...] replaces the Cmd.
  env:  the image's Env, then `-e` over it; PATH (Docker's default) if still
        unset, HOSTNAME, and HOME from the user's passwd entry unless set.
  cwd:  `-w`, else the image's WorkingDir, else /.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass

from agent.oci.model import ContainerConfig, ContainerError
from agent.oci.users import User
from proto.image_config import ImageConfig

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...]     # "KEY=value"
    cwd: str
    user: User


def resolve(config: ContainerConfig, user: User) -> Process:
    image = config.image.config
    return Process(args=args(image, config.entrypoint, config.command),
                   env=environment(image, config.env, config.hostname, user),
                   cwd=working_dir(image, config.working_dir), user=user)


def args(image: ImageConfig, entrypoint: tuple[str, ...] | None,
         command: tuple[str, ...] | None) -> tuple[str, ...]:
    first = image.entrypoint if entrypoint is None else entrypoint
    if command is not None:
        rest = command
    else:
        rest = () if entrypoint is not None else image.cmd
    result = (*first, *rest)
    if not result:
        raise ContainerError("no command specified: the image has no Entrypoint or Cmd and the "
                             "run gave none")
    return result


def environment(image: ImageConfig, overrides: dict[str, str], hostname: str,
                user: User) -> tuple[str, ...]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, **image.env_dict(), **overrides}
    env.setdefault("HOME", user.home or "/")
    return tuple(f"{key}={value}" for key, value in env.items())


def working_dir(image: ImageConfig, override: str) -> str:
    chosen = override or image.working_dir or "/"
    return posixpath.normpath(posixpath.join("/", chosen))
