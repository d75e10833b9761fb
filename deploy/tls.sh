#!/usr/bin/env bash
# Make a cluster's certificates once, with `vxmesh certs`: two CAs, an admin
# certificate for the CLI, and for every node the certificates of each role
# it may take.
#
#   deploy/tls.sh DIR NAME=IP [NAME=IP ...]
#
# Creates in DIR whatever of these is missing, and leaves what exists alone,
# so it runs again unchanged when nodes are added:
#   ca.pem, ca-key.pem                   the cluster's CA (10 years)
#   admin.pem, admin-key.pem             the CLI's client certificate
#   agent-NAME.pem, agent-NAME-key.pem   NAME's agent: it may register only as NAME
#   controller-NAME.pem, ...-key.pem     a controller on NAME (SANs NAME, IP, localhost)
#   etcd/ca.pem, etcd/ca-key.pem         the etcd CA: etcd trusts it alone, and it
#                                        signs nothing agents or admins hold
#   etcd/controller-NAME.pem, ...        the controller on NAME's etcd client certificate
#   etcd/etcd-NAME.pem, ...-key.pem      an etcd member on NAME (clients and peers)
# Keys are mode 0600, DIR and DIR/etcd 0700. Runs on one DIR at a time share the CAs.
#
# Run it where the CAs' keys may live (an admin machine; for the Vagrant lab,
# the host, before the VMs boot), then give each node its files with
# `deploy/provision.sh --tls-dir DIR`, which installs those of its roles in
# /etc/vxmesh/tls (an etcd member's in /etc/vxmesh/etcd-tls).
#
# Needs vxmesh's CLI: $VXMESH if set, else this checkout's .venv/bin/vxmesh
# (`make setup`, or `python3 -m venv .venv && .venv/bin/pip install .`), else
# `vxmesh` on the PATH.
set -euo pipefail

usage() {
    sed -n '2,28s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
die() {
    echo "tls.sh: $*" >&2
    exit 1
}

[[ $# -ge 2 ]] || usage
dir=$1
shift

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
vxmesh=${VXMESH:-}
if [[ -z $vxmesh ]]; then
    if [[ -x $src/.venv/bin/vxmesh ]]; then
        vxmesh=$src/.venv/bin/vxmesh
    else
        vxmesh=$(command -v vxmesh) ||
            die "no vxmesh CLI: set VXMESH, or run 'python3 -m venv .venv && .venv/bin/pip install .' in $src"
    fi
fi

nodes=()
for node in "$@"; do
    name=${node%%=*}
    ip=${node#*=}
    [[ $node == *=* && $name =~ ^[a-z0-9][a-z0-9-]{0,23}$ ]] ||
        die "'$node' is not NAME=IP with a host name (lowercase letters, digits, '-') as NAME"
    [[ $ip =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "'$node': '$ip' is not an IPv4 address"
    nodes+=("$name=$ip")
done

certs() {
    "$vxmesh" certs "$@" --dir "$dir" --if-missing || die "vxmesh certs $* failed"
}

certs init
certs issue --admin
for node in "${nodes[@]}"; do
    name=${node%%=*}
    ip=${node#*=}
    certs issue --host "$name" --ip "$ip"
    certs issue --controller "$name" --ip "$ip"
    certs issue --etcd "$name" --ip "$ip"
done
