"""`vxmesh agent [--config FILE] [--key VALUE ...]` (the CLI execs `python -m agent`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.config import AGENT, agent_api
from proto import config_file
from proto.addresses import first_host
from transport.tls import TlsError, TlsFiles


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vxmesh agent", description="Run a host agent. Options come from --config FILE "
                                         "(deploy/config/agent.toml documents them) and flags.")
    config_file.add_flags(parser, AGENT)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        values = config_file.resolve(AGENT, args.config, config_file.given_flags(args, AGENT))
        # Imported once the options are known good: --help needs none of it.
        from agent.main import AgentConfig, run
        run(AgentConfig(name=values["name"], controllers=values["controller"], vtep_ip=values["vtep-ip"],
                        api=agent_api(values), state_root=Path(values["state-root"]),
                        gwbridge_subnet=values["gwbridge-subnet"],
                        gwbridge_gateway=first_host(values["gwbridge-subnet"]),
                        bridge_subnet=values["bridge-subnet"],
                        bridge_gateway=first_host(values["bridge-subnet"]),
                        vtep_filter=values["vtep-filter"] == "on",
                        port_security=values["port-security"] == "on",
                        vtep_probes=values["vtep-probes"] == "on",
                        tls=TlsFiles(Path(values["ca"]), Path(values["cert"]), Path(values["key"])),
                        insecure=values["insecure"], registry=values["registry"], dns=values["dns"],
                        plugin_socket=values["plugin-socket"],
                        docker_api=values["docker-api"]))
    except (config_file.ConfigError, TlsError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
