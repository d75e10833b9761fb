"""`vxmesh controller [--config FILE] [--key VALUE ...]` (the CLI execs `python -m controller`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.config import CONTROLLER
from proto import config_file
from transport.tls import TlsError, TlsFiles


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vxmesh controller", description="Run a controller. Options come from --config FILE "
                                              "(deploy/config/controller.toml documents them) and flags.")
    config_file.add_flags(parser, CONTROLLER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        values = config_file.resolve(CONTROLLER, args.config, config_file.given_flags(args, CONTROLLER))
        # Imported once the options are known good: --help needs none of it.
        from controller.server import ControllerConfig, run
        tls = TlsFiles(Path(values["ca"]), Path(values["cert"]), Path(values["key"]))
        etcd_tls = TlsFiles(*(Path(values[f"etcd-{k}"]) for k in ("ca", "cert", "key")))
        run(ControllerConfig(listen=values["listen"], etcd=values["etcd"], data_dir=Path(values["data-dir"]),
                             prefix=values["prefix"], host_ttl=values["host-ttl"],
                             agent_grace=values["agent-grace"], dead_host_release=values["dead-host-release"],
                             tls=tls, insecure=values["insecure"], etcd_tls=etcd_tls,
                             registry=values["registry"],
                             default_address_pools=values["default-address-pools"]))
    except (config_file.ConfigError, TlsError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
