"""Fill a lab's etcd with a network's endpoints on hosts without an agent, from the controller's namespace.

    python -m tests.benchmarks.lab_seed --etcd URL --ca F --cert F --key F --network NAME
        --subnet CIDR --first-offset N --endpoints N --ghost NAME=VTEP [--ghost ...]

A lab's etcd listens on its fabric only, with mutual TLS, so a benchmark runs
this module in the controller's network namespace with the controller's etcd
client certificate. The records are preseed.py's (stopped containers that
keep their table rows), on the ghost hosts given, registered alive on a
lease of an hour (the lab is gone long before). Prints the last revision
written, as JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import json

from controller.etcd import Etcd
from controller.keys import Keys
from tests.benchmarks import preseed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--etcd", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--network", required=True)
    parser.add_argument("--subnet", required=True)
    parser.add_argument("--first-offset", type=int, required=True)
    parser.add_argument("--endpoints", type=int, required=True)
    parser.add_argument("--ghost", action="append", required=True, metavar="NAME=VTEP")
    args = parser.parse_args(argv)
    ghosts = dict(g.split("=", 1) for g in args.ghost)
    revision = asyncio.run(_seed(args, ghosts))
    print(json.dumps({"revision": revision}))
    return 0


async def _seed(args: argparse.Namespace, ghosts: dict[str, str]) -> int:
    etcd = await Etcd.connect([args.etcd], ca=args.ca, cert=args.cert, key=args.key)
    try:
        keys = Keys()
        await preseed.register_ghost_hosts(etcd, keys, ghosts)
        spots = preseed.placements("seed", ghosts, args.endpoints, args.subnet, args.first_offset)
        return await preseed.write_containers(etcd, keys, args.network, spots)
    finally:
        await etcd.close()


if __name__ == "__main__":
    raise SystemExit(main())
