"""The config files deploy/provision.sh installs and the namespace lab writes.

    python -m deploy.config_files controller [--listen ADDR ...] [--etcd URL,...] ...
    python -m deploy.config_files agent --name N --vtep-ip IP --controller ADDR,...
    python -m deploy.config_files etcd --name N --cluster N1=IP1,N2=IP2,N3=IP3 [--tls-dir DIR]
    python -m deploy.config_files registry --listen IP:PORT [--tls-dir DIR]
    python -m deploy.config_files examples [--write]

print one file on stdout (controller and agent take the flags of `vxmesh
controller` / `vxmesh agent`); `examples` checks (or rewrites) the
documented examples in deploy/config/. Standard library only: the
provisioning script runs this before vxmesh's dependencies are installed.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from agent.config import AGENT
from controller.config import CONTROLLER
from deploy.registry_config import CREDENTIALS, REGISTRY_PORT, RegistryConfig, RegistryTls, render_registry
from proto import config_file as vxconfig
from proto.config_file import host_name

EXAMPLE_DIR = Path(__file__).resolve().parent / "config"
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
CONTROLLER_PORT = 7946
ETCD_DATA_DIR = "/var/lib/vxmesh-etcd"    # the StateDirectory= of vxmesh-etcd.service
# Where deploy/provision.sh installs an etcd member's certificate, key and the
# etcd CA: a directory of etcd's own user, apart from /etc/vxmesh/tls (root's).
ETCD_TLS_DIR = "/etc/vxmesh/etcd-tls"
ETCD_CLUSTER_TOKEN = "vxmesh"
# The tuning controller/embedded_etcd.py gives the private etcd, for the same reasons.
ETCD_COMPACTION_RETENTION = "1h"
ETCD_MAX_TXN_OPS = 4096


class ConfigFileError(Exception):
    pass


# ---- etcd ---------------------------------------------------------------------

@dataclass(frozen=True)
class EtcdMember:
    name: str
    address: str      # IPv4 address it serves peers and clients on
    scheme: str = "http"   # "https" when the cluster runs with TLS

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://{self.address}:{ETCD_PEER_PORT}"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://{self.address}:{ETCD_CLIENT_PORT}"


@dataclass(frozen=True)
class EtcdTls:
    """The member's certificate (`vxmesh certs issue --etcd NAME`), for clients and peers
    alike, and the etcd CA: the only CA the member trusts."""
    ca: str
    cert: str
    key: str

    @classmethod
    def in_dir(cls, directory: str) -> EtcdTls:
        """The names deploy/provision.sh installs the files under (in ETCD_TLS_DIR)."""
        return cls(f"{directory}/ca.pem", f"{directory}/etcd.pem", f"{directory}/etcd-key.pem")


def parse_cluster(text: str, scheme: str = "http") -> list[EtcdMember]:
    """`node1=192.168.56.11,node2=192.168.56.12` -> members, checked."""
    members = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, sep, address = item.partition("=")
        if not sep or host_name(name) is not None:
            raise ConfigFileError(f"etcd member {item!r} is not NAME=IPV4 with a host name as NAME")
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise ConfigFileError(f"etcd member {item!r}: {address!r} is not an IPv4 address") from None
        members.append(EtcdMember(name, address, scheme))
    if not members:
        raise ConfigFileError("an etcd cluster needs at least one member (NAME=IP,...)")
    for attr in ("name", "address"):
        values = [getattr(m, attr) for m in members]
        if len(set(values)) != len(values):
            raise ConfigFileError(f"etcd members must have distinct {attr}s: {text}")
    return members


@dataclass(frozen=True)
class EtcdConfig:
    member: str                       # this member's name
    cluster: tuple[EtcdMember, ...]   # every member, this one included
    data_dir: str = ETCD_DATA_DIR
    token: str = ETCD_CLUSTER_TOKEN
    tls: EtcdTls | None = None        # None: plain HTTP between everyone

    def this(self) -> EtcdMember:
        for member in self.cluster:
            if member.name == self.member:
                return member
        raise ConfigFileError(f"{self.member!r} is not one of the etcd members "
                              f"{', '.join(m.name for m in self.cluster)}")


def render_etcd(cfg: EtcdConfig, header: str) -> str:
    """etcd's own YAML config file (`etcd --config-file`), every key explained.
    With --config-file etcd ignores its flags and ETCD_* variables, so this
    file is the whole configuration."""
    me = cfg.this()
    if cfg.tls is not None and any(m.scheme != "https" for m in cfg.cluster):
        raise ConfigFileError("an etcd cluster with TLS needs https:// members")
    loopback = f"{me.scheme}://127.0.0.1:{ETCD_CLIENT_PORT}"
    entries = [
        ("name", me.name, "This member's name; unique in the cluster."),
        ("data-dir", cfg.data_dir,
         "Where the member keeps its data. etcd default: ${name}.etcd in the working directory."),
        ("listen-peer-urls", me.peer_url, "Where the other members reach this one."),
        ("initial-advertise-peer-urls", me.peer_url, "The peer URL announced to the cluster."),
        ("listen-client-urls", f"{me.client_url},{loopback}",
         "Where controllers (and etcdctl on this host, on loopback) reach this member."),
        ("advertise-client-urls", me.client_url, "The client URL announced to the cluster."),
        ("initial-cluster", ",".join(f"{m.name}={m.peer_url}" for m in cfg.cluster),
         "Every member of the cluster when it is first formed: name=peer URL. A member "
         "that already has data in data-dir ignores this and the two keys below."),
        ("initial-cluster-state", "new",
         "'new': the members listed above form the cluster together."),
        ("initial-cluster-token", cfg.token,
         "Keeps members of another cluster with the same member list out."),
        ("auto-compaction-mode", "periodic",
         "Drop history older than the retention below, so the database stays small."),
        ("auto-compaction-retention", ETCD_COMPACTION_RETENTION,
         "Far longer than an agent stays away and resumes; an older resume gets a snapshot."),
        ("max-txn-ops", ETCD_MAX_TXN_OPS,
         "Re-pointing every endpoint of a host with many containers is one transaction "
         "(etcd default 128)."),
        ("logger", "zap", "etcd's structured logger; 3.4's default, capnslog, is deprecated."),
        ("log-outputs", ["stderr"], "Logs on stderr, which systemd sends to the journal."),
    ]
    if cfg.tls is not None:
        # The member's one certificate serves clients and peers, and is its
        # client certificate towards the other members.
        security = {"cert-file": cfg.tls.cert, "key-file": cfg.tls.key, "client-cert-auth": True,
                    "trusted-ca-file": cfg.tls.ca}
        entries += [
            ("client-transport-security", security,
             "Clients must present a certificate signed by the etcd CA (vxmesh certs: "
             "DIR/etcd/ca.pem), which signs the members' and the controllers' etcd "
             "certificates and nothing agents or admins hold: etcd is for controllers "
             "only. The member shows its own certificate."),
            ("peer-transport-security", security,
             "The same between members: only members with a certificate from the etcd CA may join."),
        ]
    out = vxconfig.comment_lines(header) + [
        "#",
        "# Read by `etcd --config-file FILE` (deploy/systemd/vxmesh-etcd.service).",
        "# With a config file etcd ignores its flags and ETCD_* variables: this file",
        "# is the member's whole configuration. Reference:",
        "# https://etcd.io/docs/v3.4/op-guide/configuration/",
    ]
    for key, value, why in entries:
        out += [""] + vxconfig.comment_lines(why) + [f"{key}: {json.dumps(value)}"]
    return "\n".join(out) + "\n"


# ---- controller and agent -------------------------------------------------------

def render_controller(values: dict, header: str) -> str:
    return vxconfig.render(CONTROLLER, values, header)


def render_agent(values: dict, header: str) -> str:
    return vxconfig.render(AGENT, values, header)


# ---- the documented examples: the Vagrant lab's node1, with three etcd members ----

EXAMPLE_CLUSTER = tuple(EtcdMember(f"node{i}", f"192.168.56.{10 + i}", "https") for i in (1, 2, 3))
EXAMPLE_HEADER = ("Example: node1 of the Vagrant lab (vagrant/Vagrantfile) with three etcd "
                  "members, as deploy/provision.sh writes it to /etc/vxmesh/{file}.")


def registry_tls(tls_dir: str) -> RegistryTls:
    """The controller's certificate, handed over by systemd (LoadCredential=), and the cluster CA."""
    return RegistryTls(f"{CREDENTIALS}/cert", f"{CREDENTIALS}/key", f"{tls_dir}/ca.pem")


def examples() -> dict[str, str]:
    node1 = EXAMPLE_CLUSTER[0].address
    registry = f"{node1}:{REGISTRY_PORT}"
    return {
        "controller.toml": render_controller(
            {"listen": [f"{node1}:{CONTROLLER_PORT}", f"127.0.0.1:{CONTROLLER_PORT}"],
             "etcd": [m.client_url for m in EXAMPLE_CLUSTER], "registry": registry},
            EXAMPLE_HEADER.format(file="controller.toml")),
        "agent.toml": render_agent(
            {"name": "node1", "controller": [f"{node1}:{CONTROLLER_PORT}"], "vtep-ip": node1,
             "registry": registry},
            EXAMPLE_HEADER.format(file="agent.toml")),
        "registry.yml": render_registry(RegistryConfig(registry, tls=registry_tls(vxconfig.TLS_DIR)),
                                        EXAMPLE_HEADER.format(file="registry.yml")),
        "etcd.yaml": render_etcd(EtcdConfig("node1", EXAMPLE_CLUSTER, tls=EtcdTls.in_dir(ETCD_TLS_DIR)),
                                 EXAMPLE_HEADER.format(file="etcd.yaml")),
    }


def check_examples(write: bool) -> list[str]:
    """The example files that differ from what the renderers make (rewritten with `write`)."""
    stale = []
    for name, text in examples().items():
        path = EXAMPLE_DIR / name
        if not path.exists() or path.read_text() != text:
            stale.append(str(path))
            if write:
                path.write_text(text)
    return stale


# ---- command line --------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.config_files", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    for schema in (CONTROLLER, AGENT):
        cmd = sub.add_parser(schema.daemon, help=f"print a {schema.daemon}.toml")
        vxconfig.add_flags(cmd, schema, config_flag=False)
        cmd.add_argument("--header", default=f"vxmesh {schema.daemon} configuration.")
    etcd = sub.add_parser("etcd", help="print an etcd.yaml for one member")
    etcd.add_argument("--name", required=True, help="this member's name")
    etcd.add_argument("--cluster", required=True, help="every member: NAME=IP,NAME=IP,...")
    etcd.add_argument("--data-dir", default=ETCD_DATA_DIR)
    etcd.add_argument("--token", default=ETCD_CLUSTER_TOKEN)
    etcd.add_argument("--header", default="etcd member of vxmesh's cluster.")
    etcd.add_argument("--tls-dir", default="",
                      help="serve clients and peers with TLS: DIR/etcd.pem, DIR/etcd-key.pem, trusting "
                           "the etcd CA DIR/ca.pem")
    registry = sub.add_parser("registry", help="print a registry.yml (the cluster's image registry)")
    registry.add_argument("--listen", required=True, help="ADDRESS:PORT to serve on")
    registry.add_argument("--header", default="vxmesh's image registry.")
    registry.add_argument("--tls-dir", default="",
                          help="serve TLS with the certificate systemd hands over; clients need one from DIR/ca.pem")
    ex = sub.add_parser("examples", help="check deploy/config/ against the renderers")
    ex.add_argument("--write", action="store_true", help="rewrite the stale ones")
    args = parser.parse_args(argv)
    try:
        if args.kind == "examples":
            stale = check_examples(args.write)
            what = "rewritten" if args.write else "is out of date: run `make deploy-config`"
            for path in stale:
                print(f"{path} {what}")
            return 1 if stale and not args.write else 0
        if args.kind == "registry":
            tls = registry_tls(args.tls_dir) if args.tls_dir else None
            sys.stdout.write(render_registry(RegistryConfig(args.listen, tls=tls), args.header))
            return 0
        if args.kind == "etcd":
            tls = EtcdTls.in_dir(args.tls_dir) if args.tls_dir else None
            cluster = tuple(parse_cluster(args.cluster, "https" if tls else "http"))
            cfg = EtcdConfig(args.name, cluster, args.data_dir, args.token, tls)
            sys.stdout.write(render_etcd(cfg, args.header))
            return 0
        schema = CONTROLLER if args.kind == "controller" else AGENT
        sys.stdout.write(vxconfig.render(schema, vxconfig.given_flags(args, schema), args.header))
        return 0
    except (ConfigFileError, vxconfig.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
