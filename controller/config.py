"""The options of `vxmesh controller`: its config file and flags (proto/config_file.py reads them)."""
from __future__ import annotations

from proto.addresses import DEFAULT_ADDRESS_POOLS, parse_pool
from proto.config_file import (
    TLS_DIR,
    Option,
    Schema,
    absolute_path,
    both,
    etcd_prefix,
    host_port_list,
    nonempty_list,
    positive,
    registry_or_empty,
    seconds_or_zero,
    tls_options,
)
from proto.errors import InvalidArgument


def address_pools(value) -> str | None:
    """BASE:SIZE address pools (proto/addresses.py parses them)."""
    for item in value:
        try:
            parse_pool(item)
        except InvalidArgument as err:
            return str(err)
    return None


CONTROLLER = Schema("controller", (
    Option("listen", list, ["127.0.0.1:7946"],
           "Addresses to serve the user API and the agents' streams on: host:port "
           "or unix:///path.",
           both(nonempty_list, host_port_list)),
    Option("etcd", list, [],
           "etcd client URLs (http://host:2379), e.g. every member of a cluster: calls "
           "move to the next one when one fails. Empty: run a private single-member "
           "etcd on loopback, with its data in data-dir."),
    Option("data-dir", str, "/var/lib/vxmesh/etcd",
           "Data directory of the private etcd (only used when etcd is empty)."),
    Option("prefix", str, "/vxmesh/",
           "Prefix of every key vxmesh keeps in etcd; controllers sharing a cluster and "
           "a prefix share one state.", etcd_prefix),
    Option("default-address-pools", list, list(DEFAULT_ADDRESS_POOLS),
           "Where `network create` without --subnet takes a subnet, as Docker's default "
           "address pools: BASE:SIZE, the first SIZE-bit subnet of BASE that no network and "
           "no host's own subnets overlap.", address_pools),
    Option("host-ttl", int, 6,
           "Seconds without a heartbeat before a host's agent counts as gone and its lease ends.",
           positive),
    Option("agent-grace", int, 120,
           "Seconds a host whose agent is gone stays in every table (`host ls`: agent down) "
           "while its VTEP still answers its peers' probes; a host whose VTEP stops answering "
           "two peers (all of them, when fewer probe it) leaves the tables at once. 0: a host "
           "leaves the tables as soon as its agent's lease ends.", seconds_or_zero),
    Option("dead-host-release", int, 600,
           "Seconds a host must have been down (out of every table) before the controller "
           "leading the services frees the addresses and host ports its removed containers "
           "still hold: the tasks rescheduled elsewhere, containers removed while it was away. "
           "Until then a host that comes back finds them as it left them; an address of a "
           "container that still exists is never freed. 0: never free them.", seconds_or_zero),
    Option("registry", str, "",
           "The cluster's image registry, HOST:PORT (Debian's docker-registry, serving TLS "
           "with a certificate from the cluster CA; deploy/provision.sh --registry runs one): "
           "`run` resolves every image there, `image load|pull|push|ls|rm|inspect` work on "
           "it (with skopeo), over TLS verified with the ca below, presenting this "
           "controller's certificate (plain HTTP with insecure = true). Empty: no images, so "
           "no containers.", registry_or_empty),
    *tls_options("controller"),
    Option("etcd-ca", str, f"{TLS_DIR}/etcd-ca.pem",
           "The etcd CA's certificate, to verify https:// etcd members with. etcd trusts "
           "this CA alone, and it signs nothing agents or admins hold "
           "(`vxmesh certs init` makes it in DIR/etcd); it may not be the ca above.",
           absolute_path),
    Option("etcd-cert", str, f"{TLS_DIR}/etcd-client.pem",
           "This controller's client certificate for etcd, signed by the etcd CA "
           "(`vxmesh certs issue --controller` makes it in DIR/etcd); it also serves "
           "the private etcd.", absolute_path),
    Option("etcd-key", str, f"{TLS_DIR}/etcd-client-key.pem",
           "Its private key (mode 0600; never logged).", absolute_path),
))
