#!/usr/bin/env bash
# Make a cluster's certificates once: one CA and a certificate per node.
#
#   deploy/tls.sh DIR NAME=IP [NAME=IP ...]
#
# Creates in DIR whatever of these is missing, and leaves what exists alone,
# so it runs again unchanged when nodes are added:
#   ca.pem, ca-key.pem        the cluster's CA (10 years)
#   NAME.pem, NAME-key.pem    NAME's certificate, signed by the CA (825 days),
#                             for server and client authentication, with
#                             subject alternative names DNS:NAME and IP:IP
#
# Run it where the CA key may live (an admin machine; for the Vagrant lab,
# the host, before the VMs boot), then give each node its files with
# `deploy/provision.sh --tls-dir DIR`, which installs them in /etc/vxmesh/tls.
# The files are placed for mutual TLS between agents, controllers and etcd
# (issue 6); vxmesh does not use them yet.
#
# Needs bash and openssl (1.1 or 3.x; LibreSSL works too).
set -euo pipefail

usage() {
    sed -n '2,19s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
die() {
    echo "tls.sh: $*" >&2
    exit 1
}

[[ $# -ge 2 ]] || usage
dir=$1
shift
command -v openssl >/dev/null || die "openssl is not installed"

nodes=()
for node in "$@"; do
    name=${node%%=*}
    ip=${node#*=}
    [[ $node == *=* && $name =~ ^[a-z0-9][a-z0-9-]{0,23}$ ]] ||
        die "'$node' is not NAME=IP with a host name (lowercase letters, digits, '-') as NAME"
    [[ $ip =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "'$node': '$ip' is not an IPv4 address"
    nodes+=("$name=$ip")
done

mkdir -p "$dir"
# One run at a time per DIR (Vagrant's libvirt provider brings VMs up in
# parallel, each running this): two CAs made at once would not match their
# keys. mkdir is atomic, and portable to hosts without flock.
lock=$dir/.tls.lock
for ((tries = 0; ; tries++)); do
    mkdir "$lock" 2>/dev/null && break
    ((tries < 600)) || die "$lock has been held for a minute; remove it if no tls.sh is running"
    sleep 0.1
done
work=""
trap 'rm -rf "$work"; rmdir "$lock"' EXIT
# Keys are created readable by their owner only.
umask 077
work=$(mktemp -d "$dir/.tls-work.XXXXXX")

# Every file appears complete or not at all: made in $work, then renamed.
publish() {
    mv "$work/$1" "$dir/$1"
}

if [[ ! -e $dir/ca.pem ]]; then
    [[ ! -e $dir/ca-key.pem ]] || die "$dir/ca-key.pem exists without ca.pem: remove it or restore ca.pem"
    cat >"$work/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = ca
prompt = no
[dn]
CN = vxmesh cluster CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    openssl genrsa -out "$work/ca-key.pem" 2048 2>/dev/null
    openssl req -x509 -new -key "$work/ca-key.pem" -days 3650 -sha256 \
        -config "$work/ca.cnf" -out "$work/ca.pem"
    chmod 0644 "$work/ca.pem"
    publish ca-key.pem
    publish ca.pem
    echo "made $dir/ca.pem"
fi

for node in "${nodes[@]}"; do
    name=${node%%=*}
    ip=${node#*=}
    [[ ! -e $dir/$name.pem ]] || continue
    cat >"$work/$name.cnf" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:$name, IP:$ip
authorityKeyIdentifier = keyid
EOF
    openssl genrsa -out "$work/$name-key.pem" 2048 2>/dev/null
    openssl req -new -key "$work/$name-key.pem" -subj "/CN=$name" -out "$work/$name.csr"
    openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
        -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
        -extfile "$work/$name.cnf" -out "$work/$name.pem" 2>/dev/null
    chmod 0644 "$work/$name.pem"
    publish "$name-key.pem"
    publish "$name.pem"
    echo "made $dir/$name.pem ($ip)"
done
