"""The options of `vxmesh controller`: its config file and flags (proto/config_file.py reads them)."""
from __future__ import annotations

from proto.config_file import (
    Option,
    Schema,
    absolute_path_or_empty,
    both,
    etcd_prefix,
    host_port_list,
    nonempty_list,
    positive,
    registry_or_empty,
    tls_options,
)

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
    Option("host-ttl", int, 6,
           "Seconds without a heartbeat before a host is shown down and its lease ends.",
           positive),
    Option("registry", str, "",
           "The cluster's image registry, HOST:PORT (Debian's docker-registry, serving TLS "
           "with a certificate from the cluster CA; deploy/provision.sh --registry runs one): "
           "`run` resolves every image there, `image load|pull|push|ls|rm|inspect` work on "
           "it (with skopeo), over TLS verified with the ca below, presenting this "
           "controller's certificate (plain HTTP with insecure = true). Empty: no images, so "
           "no containers.", registry_or_empty),
    *tls_options("controller"),
    Option("etcd-ca", str, "",
           "CA certificate to verify https:// etcd members with. Empty: the ca above.",
           absolute_path_or_empty),
    Option("etcd-cert", str, "",
           "Client certificate for https:// etcd members (with --client-cert-auth). "
           "Empty: the cert above.", absolute_path_or_empty),
    Option("etcd-key", str, "",
           "Its private key. Empty: the key above.", absolute_path_or_empty),
))
