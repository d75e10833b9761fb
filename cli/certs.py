"""`vxmesh certs`: the command line of cli/pki.py.

    vxmesh certs init  --dir DIR [--if-missing]
    vxmesh certs issue --dir DIR (--host NAME | --controller NAME | --etcd NAME | --admin)
                       [--ip IP]... [--dns NAME]... [--if-missing]

`init` makes both CAs (the cluster's in DIR, etcd's in DIR/etcd); a
controller gets two certificates, one from each CA: the one it serves and
calls agents with, and the one it is etcd's client with.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cli.options import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("certs", help="make the cluster's CAs and certificates",
                            description="Make the cluster CA, the etcd CA (etcd trusts it alone, and it "
                                        "signs nothing agents or admins hold) and the certificates of "
                                        "agents, controllers, etcd members and admins (the CLI). "
                                        "Nothing is overwritten.")
    actions = parser.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="make the CAs: DIR/ca.pem (the cluster's) and DIR/etcd/ca.pem (etcd's), "
                                           "with their keys")
    issue = actions.add_parser("issue", help="make a certificate signed by the CA it belongs to")
    for cmd in (init, issue):
        cmd.add_argument("--dir", required=True, type=Path, help="the directory holding the CAs")
        cmd.add_argument("--if-missing", action="store_true",
                         help="keep files that exist instead of refusing (for scripts run again)")
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--host", metavar="NAME", help="an agent's certificate: it may register only as NAME")
    who.add_argument("--controller", metavar="NAME",
                     help="a controller's certificates: DIR/controller-NAME.pem (cluster CA) and its etcd "
                          "client certificate DIR/etcd/controller-NAME.pem (etcd CA)")
    who.add_argument("--etcd", metavar="NAME",
                     help="an etcd member's certificate, DIR/etcd/etcd-NAME.pem (etcd CA; clients and peers)")
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
        for made in certs.init(args.dir, if_missing=args.if_missing):
            print(f"{'made' if made.created else 'kept'} {made.cert} ({made.name} CA)")
        return 0
    if args.admin:
        kinds, name = ["admin"], certs.ADMIN_NAME
    elif args.controller:
        kinds, name = ["controller", "etcd-client"], args.controller
    else:
        kinds, name = (["agent"], args.host) if args.host else (["etcd"], args.etcd)
    for kind in kinds:
        issued = certs.issue(args.dir, kind, name, ips=args.ip, dns=args.dns, if_missing=args.if_missing)
        names = f"; {', '.join(issued.sans)}" if issued.sans else ""
        towards = " for etcd" if kind == "etcd-client" else ""
        print(f"{'made' if issued.created else 'kept'} {issued.cert} ({issued.role} {name!r}{towards}{names})")
    return 0
