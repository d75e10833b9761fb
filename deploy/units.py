"""The systemd units in deploy/systemd/, read as the source of the daemons' command lines.

The namespace lab starts etcd, the registry, the controller and the agents with the
`ExecStart=` of these units, changing only the config file path (and, for
vxmesh, the installed program for this checkout's), so every lab test runs
the command line a deployed host runs.
"""
from __future__ import annotations

import configparser
import shlex
from dataclasses import dataclass
from pathlib import Path

UNIT_DIR = Path(__file__).resolve().parent / "systemd"
ETCD_UNIT = "vxmesh-etcd.service"
CONTROLLER_UNIT = "vxmesh-controller.service"
AGENT_UNIT = "vxmesh-agent.service"
REGISTRY_UNIT = "vxmesh-registry.service"
UNITS = (ETCD_UNIT, CONTROLLER_UNIT, AGENT_UNIT, REGISTRY_UNIT)
# Where deploy/provision.sh installs the vxmesh entry point.
INSTALLED_VXMESH = "/opt/vxmesh/venv/bin/vxmesh"
# How each program is told its config file (docker-registry: `serve FILE`).
CONFIG_FLAGS = ("--config", "--config-file", "serve")


class UnitError(Exception):
    pass


@dataclass(frozen=True)
class ExecStart:
    argv: list[str]
    config: str        # the config file the command names

    def with_paths(self, config: Path | str, program: Path | str | None = None) -> list[str]:
        """The same command line reading `config`, run by `program` if given."""
        argv = [str(program) if program is not None else self.argv[0], *self.argv[1:]]
        return [str(config) if arg == self.config else arg for arg in argv]


def exec_start(unit: str, unit_dir: Path = UNIT_DIR) -> ExecStart:
    path = unit_dir / unit
    # systemd's syntax is close enough to INI for the [Service] section we read:
    # no repeated keys there, no line continuations.
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case sensitive
    try:
        parser.read_string(path.read_text(), source=str(path))
        line = parser["Service"]["ExecStart"]
    except (OSError, configparser.Error, KeyError) as exc:
        raise UnitError(f"{path}: cannot read ExecStart= from [Service]: {exc}") from None
    argv = shlex.split(line)
    for flag in CONFIG_FLAGS:
        if flag in argv[:-1]:
            return ExecStart(argv, argv[argv.index(flag) + 1])
    raise UnitError(f"{path}: ExecStart={line} names no config file ({' or '.join(CONFIG_FLAGS)})")
