"""`vxmesh certs`: the command line of cli/pki.py.

    vxmesh certs init  --dir DIR [--if-missing]
    vxmesh certs issue --dir DIR (--host NAME | --controller NAME | --etcd NAME | --admin)
                       [--ip IP]... [--dns NAME]... [--if-missing]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cli.options import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("certs", help="make the cluster's CA and certificates",
                            description="Make the cluster CA and the certificates of agents, "
                                        "controllers, etcd members and admins (the CLI). "
                                        "Nothing is overwritten.")
    actions = parser.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="make the cluster CA: DIR/ca.pem and DIR/ca-key.pem")
    issue = actions.add_parser("issue", help="make a certificate signed by DIR's CA")
    for cmd in (init, issue):
        cmd.add_argument("--dir", required=True, type=Path, help="the directory holding the CA")
        cmd.add_argument("--if-missing", action="store_true",
                         help="keep files that exist instead of refusing (for scripts run again)")
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--host", metavar="NAME", help="an agent's certificate: it may register only as NAME")
    who.add_argument("--controller", metavar="NAME", help="a controller's certificate")
    who.add_argument("--etcd", metavar="NAME", help="an etcd member's certificate (client and peer)")
    who.add_argument("--admin", action="store_true", help="the CLI's client certificate (the user API)")
    issue.add_argument("--ip", action="append", default=[],
                       help="an address the holder serves on (repeatable)")
    issue.add_argument("--dns", action="append", default=[],
                       help="another DNS name the holder serves as (repeatable)")


def run(args: argparse.Namespace) -> int:
    """Raises CliError with a one-line message."""
    # Imported here: cryptography slows down the start of every other command.
    from cli import pki
    try:
        return _run(args, pki)
    except pki.CertError as err:
        raise CliError(str(err)) from None


def _run(args: argparse.Namespace, certs) -> int:
    if args.action == "init":
        issued = certs.init_ca(args.dir, if_missing=args.if_missing)
        print(f"{'made' if issued.created else 'kept'} {issued.cert} (cluster CA)")
        return 0
    if args.admin:
        role, name = "admin", certs.ADMIN_NAME
    else:
        role, name = next((r, getattr(args, a)) for r, a in (("agent", "host"), ("controller", "controller"),
                                                               ("etcd", "etcd")) if getattr(args, a))
    issued = certs.issue(args.dir, role, name, ips=args.ip, dns=args.dns, if_missing=args.if_missing)
    names = f"; {', '.join(issued.sans)}" if issued.sans else ""
    print(f"{'made' if issued.created else 'kept'} {issued.cert} ({role} {name!r}{names})")
    return 0
