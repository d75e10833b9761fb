#!/usr/bin/env bash
# Install vxmesh on a Debian 12 or Ubuntu 24.04 host and enable its systemd
# units for the host's role. The Vagrant lab runs exactly this on each VM.
#
#   deploy/provision.sh --role controller|agent|all --address IP [options]
#
#   --role ROLE            controller: etcd (see --etcd-cluster) + controller;
#                          agent: the agent; all: both
#   --address IP           this host's address on the cluster network: the
#                          agent's VTEP, where the controller and etcd listen
#   --name NAME            this host's name (default: hostname -s)
#   --controller LIST      controllers the agent uses, host:port,... (default
#                          with --role all: ADDRESS:7946; required for agent)
#   --etcd-cluster LIST    the etcd members vxmesh runs, NAME=IP,...; a host
#                          listed here runs vxmesh-etcd (default on a
#                          controller: this host alone, NAME=ADDRESS)
#   --etcd-endpoints LIST  use an existing etcd instead: client URLs,...
#   --registry HOST:PORT   the cluster's image registry, which the controller
#                          and the agent use (default with --run-registry:
#                          ADDRESS:5000; without one, no container can run)
#   --run-registry         run that registry here (controller or all): Debian's
#                          docker-registry with vxmesh's settings, serving TLS
#                          with this controller's certificate; Debian's own
#                          docker-registry service is disabled
#   --tls-dir DIR          mutual TLS everywhere: install from DIR (made by
#                          deploy/tls.sh) ca.pem, admin.pem and this host's
#                          agent- and controller-NAME.pem with their keys into
#                          /etc/vxmesh/tls, a controller's etcd client files
#                          from DIR/etcd there too, and an etcd member's
#                          (DIR/etcd/etcd-NAME.pem) into /etc/vxmesh/etcd-tls
#   --insecure             plain-text gRPC and HTTP etcd instead (test networks)
#   --engines LIST         docker,podman: let this host's existing Docker and/or
#                          podman put containers on vxmesh networks (agent):
#                          the agent serves the plug-in socket
#                          /run/docker/plugins/vxmesh.sock, which Docker finds
#                          by itself; for podman, vxmesh-cni is linked into
#                          /usr/lib/cni and podman set to its CNI backend
#                          (/etc/containers/containers.conf.d/50-vxmesh.conf).
#                          Without it the agent serves no engine
#   --src DIR              the vxmesh source to install (default: this checkout)
#   --dry-run              print every step, change nothing
#
# One of --tls-dir and --insecure is required. Installs: Debian packages, a
# venv with vxmesh in /opt/vxmesh, the `vxmesh` command in /usr/local/bin,
# config files in /etc/vxmesh (rendered by deploy/config_files.py) and the
# units of deploy/systemd, which log to the journal. Running it again applies
# changed options and restarts the units.
set -euo pipefail

PREFIX=/opt/vxmesh
ETC=/etc/vxmesh
ETCD_TLS=$ETC/etcd-tls
UNIT_DIR=/etc/systemd/system
CONTROLLER_PORT=7946
ETCD_CLIENT_PORT=2379
REGISTRY_PORT=5000

usage() {
    sed -n '2,47s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
die() {
    echo "provision.sh: $*" >&2
    exit 1
}

role="" address="" name="" controllers="" etcd_cluster="" etcd_endpoints="" tls_dir="" insecure=0 dry_run=0
registry="" run_registry=0 engines=""
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
while [[ $# -gt 0 ]]; do
    case $1 in
        --role | --address | --name | --controller | --etcd-cluster | --etcd-endpoints | --tls-dir | --src | --registry | --engines)
            [[ $# -ge 2 ]] || die "$1 needs a value"
            value=$2
            case $1 in
                --role) role=$value ;;
                --address) address=$value ;;
                --name) name=$value ;;
                --controller) controllers=$value ;;
                --etcd-cluster) etcd_cluster=$value ;;
                --etcd-endpoints) etcd_endpoints=$value ;;
                --tls-dir) tls_dir=$value ;;
                --src) src=$value ;;
                --registry) registry=$value ;;
                --engines) engines=$value ;;
            esac
            shift 2
            ;;
        --insecure) insecure=1; shift ;;
        --run-registry) run_registry=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage ;;
        *) die "unknown argument '$1' (--help lists them)" ;;
    esac
done

# ---- what this host runs ----------------------------------------------------

case $role in
    controller) with_controller=1 with_agent=0 ;;
    agent) with_controller=0 with_agent=1 ;;
    all) with_controller=1 with_agent=1 ;;
    *) die "--role must be controller, agent or all, not '$role'" ;;
esac
[[ -n $address ]] || die "--address is required: this host's address on the cluster network"
[[ -n $name ]] || name=$(hostname -s)
[[ -n $tls_dir || $insecure == 1 ]] ||
    die "--tls-dir DIR (certificates made by deploy/tls.sh) or --insecure (plain text) is required"
[[ -n $tls_dir && $insecure == 1 ]] && die "--tls-dir and --insecure exclude each other"
[[ -n $etcd_cluster && -n $etcd_endpoints ]] &&
    die "--etcd-cluster (etcd run by vxmesh) and --etcd-endpoints (an existing etcd) exclude each other"
if [[ $with_controller == 1 && -z $etcd_cluster && -z $etcd_endpoints ]]; then
    etcd_cluster="$name=$address"
fi
if [[ $run_registry == 1 ]]; then
    [[ $with_controller == 1 ]] || die "--run-registry runs the registry on a controller node (--role controller or all)"
    [[ -n $registry ]] || registry="$address:$REGISTRY_PORT"
fi
if [[ $with_agent == 1 && -z $controllers ]]; then
    [[ $with_controller == 1 ]] || die "--controller is required for an agent without a controller on this host"
    controllers="$address:$CONTROLLER_PORT"
fi

with_docker=0 with_podman=0
if [[ -n $engines ]]; then
    [[ $with_agent == 1 ]] || die "--engines serves the engines of an agent's host (--role agent or all)"
    IFS=, read -ra wanted_engines <<<"$engines"
    for engine in "${wanted_engines[@]}"; do
        case $engine in
            docker) with_docker=1 ;;
            podman) with_podman=1 ;;
            *) die "--engines takes docker and podman, not '$engine'" ;;
        esac
    done
fi

etcd_member=0
etcd_urls=()
scheme=https
[[ $insecure == 1 ]] && scheme=http
if [[ -n $etcd_cluster ]]; then
    IFS=, read -ra members <<<"$etcd_cluster"
    for member in "${members[@]}"; do
        [[ ${member%%=*} == "$name" ]] && etcd_member=1
        etcd_urls+=("$scheme://${member#*=}:$ETCD_CLIENT_PORT")
    done
else
    IFS=, read -ra etcd_urls <<<"$etcd_endpoints"
fi

[[ -f $src/pyproject.toml && -d $src/deploy/systemd ]] || die "$src is not a vxmesh checkout (--src)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    die "vxmesh needs python3 >= 3.11 (Debian 12, Ubuntu 24.04 or later)"

# ---- steps: printed, and done unless --dry-run ------------------------------------

run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    [[ $dry_run == 1 ]] || "$@"
}

# write_file MODE PATH < content
write_file() {
    local mode=$1 path=$2 content
    content=$(cat)
    printf '+ write %s mode %s\n' "$path" "$mode"
    printf '%s\n' "$content" | sed 's/^/| /'
    if [[ $dry_run == 0 ]]; then
        install -d -m 0755 "$(dirname "$path")"
        printf '%s\n' "$content" >"$path.tmp"
        chmod "$mode" "$path.tmp"
        mv "$path.tmp" "$path"
    fi
}

# The same renderer the namespace lab writes its config files with.
render() {
    PYTHONPATH=$src python3 -m deploy.config_files "$@" || die "cannot render the $1 config"
}

joined() {
    local IFS=,
    echo "$*"
}

echo "# vxmesh on $name ($address): role $role$([[ $etcd_member == 1 ]] && echo ', etcd member')$([[ $dry_run == 1 ]] && echo ', dry run')"

# ---- packages -------------------------------------------------------------------

packages=(python3 python3-venv ca-certificates)
# crun runs containers under conmon, umoci unpacks their images.
[[ $with_agent == 1 ]] && packages+=(iproute2 nftables util-linux procps iputils-ping crun conmon umoci)
[[ $with_controller == 1 ]] && packages+=(etcd-client)
# Agents pull images with skopeo; the controller copies them in and out of
# the registry with it (`vxmesh image load|pull|push`).
packages+=(skopeo)
[[ $etcd_member == 1 ]] && packages+=(etcd-server)
[[ $run_registry == 1 ]] && packages+=(docker-registry)
run apt-get update -q
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
if [[ $etcd_member == 1 ]]; then
    # Debian's etcd-server starts its own single-member etcd on the ports
    # vxmesh-etcd needs.
    run systemctl disable --now etcd.service
fi
if [[ $run_registry == 1 ]]; then
    # Debian's docker-registry starts a registry on :5000 that anyone may
    # read and write; vxmesh-registry takes its place.
    run systemctl disable --now docker-registry.service
fi

# ---- vxmesh itself --------------------------------------------------------------------

run install -d -m 0755 "$PREFIX"
run python3 -m venv "$PREFIX/venv"
run "$PREFIX/venv/bin/pip" install --quiet --upgrade "$src"
run install -m 0644 "$src/README.md" "$PREFIX/README.md"
# The CLI for people on this host: the cluster's controller unless
# VXMESH_CONTROLLER says otherwise (the built-in default is the namespace lab's),
# with the admin certificate of /etc/vxmesh/tls (readable by root only).
cli_controller=${controllers%%,*}
[[ -n $cli_controller ]] || cli_controller="$address:$CONTROLLER_PORT"
cli_insecure=""
[[ $insecure == 1 ]] && cli_insecure=": \"\${VXMESH_INSECURE:=1}\"; export VXMESH_INSECURE"
write_file 0755 /usr/local/bin/vxmesh <<EOF
#!/bin/sh
# Written by deploy/provision.sh.
: "\${VXMESH_CONTROLLER:=$cli_controller}"
export VXMESH_CONTROLLER
$cli_insecure
exec $PREFIX/venv/bin/vxmesh "\$@"
EOF

# ---- certificates: mutual TLS between CLI, agents, controllers and etcd -------------

if [[ -n $tls_dir ]]; then
    # SOURCE-IN-DIR INSTALLED-AS: the names the config files' defaults use.
    # /etc/vxmesh/tls is root's alone (mode 0700): the cluster CA, the host's
    # certificates, and a controller's etcd CA and etcd client certificate.
    pairs=("admin admin")
    [[ $with_agent == 1 ]] && pairs+=("agent-$name agent")
    [[ $with_controller == 1 ]] && pairs+=("controller-$name controller" "etcd/controller-$name etcd-client")
    # Not the CAs' keys: they stay where the certificates were made.
    need=(ca.pem)
    for pair in "${pairs[@]}"; do
        need+=("${pair%% *}.pem" "${pair%% *}-key.pem")
    done
    [[ $with_controller == 1 || $etcd_member == 1 ]] && need+=(etcd/ca.pem)
    [[ $etcd_member == 1 ]] && need+=("etcd/etcd-$name.pem" "etcd/etcd-$name-key.pem")
    for file in "${need[@]}"; do
        [[ -f $tls_dir/$file ]] || die "$tls_dir/$file is missing: make it with deploy/tls.sh $tls_dir $name=$address"
    done
    run install -d -m 0700 "$ETC/tls"
    run install -m 0644 "$tls_dir/ca.pem" "$ETC/tls/ca.pem"
    [[ $with_controller == 1 ]] && run install -m 0644 "$tls_dir/etcd/ca.pem" "$ETC/tls/etcd-ca.pem"
    for pair in "${pairs[@]}"; do
        from=${pair%% *} to=${pair#* }
        run install -m 0644 "$tls_dir/$from.pem" "$ETC/tls/$to.pem"
        run install -m 0600 "$tls_dir/$from-key.pem" "$ETC/tls/$to-key.pem"
    done
    if [[ $etcd_member == 1 ]]; then
        # etcd runs as its own user (vxmesh-etcd.service), in a directory of
        # its own: the etcd CA, which it trusts alone, its certificate and key.
        run install -d -m 0700 -o etcd -g etcd "$ETCD_TLS"
        run install -m 0644 -o etcd -g etcd "$tls_dir/etcd/ca.pem" "$ETCD_TLS/ca.pem"
        run install -m 0644 -o etcd -g etcd "$tls_dir/etcd/etcd-$name.pem" "$ETCD_TLS/etcd.pem"
        run install -m 0600 -o etcd -g etcd "$tls_dir/etcd/etcd-$name-key.pem" "$ETCD_TLS/etcd-key.pem"
    fi
fi

# ---- config files and units ---------------------------------------------------------------

header="Written by deploy/provision.sh for $name ($address)."
insecure_flag=()
[[ $insecure == 1 ]] && insecure_flag=(--insecure)
units=()
# Rendered in this shell, so a renderer error (a bad option) stops the script.
tls_flags=()
[[ $insecure == 1 ]] || tls_flags=(--tls-dir "$ETC/tls")
registry_flag=()
[[ -n $registry ]] && registry_flag=(--registry "$registry")
if [[ $etcd_member == 1 ]]; then
    etcd_tls_flags=()
    [[ $insecure == 1 ]] || etcd_tls_flags=(--tls-dir "$ETCD_TLS")
    config=$(render etcd --name "$name" --cluster "$etcd_cluster" --header "$header" "${etcd_tls_flags[@]}")
    write_file 0644 "$ETC/etcd.yaml" <<<"$config"
    units+=(vxmesh-etcd.service)
fi
if [[ $run_registry == 1 ]]; then
    config=$(render registry --listen "$address:$REGISTRY_PORT" --header "$header" "${tls_flags[@]}")
    write_file 0644 "$ETC/registry.yml" <<<"$config"
    if [[ $insecure == 0 ]]; then
        # The controller's certificate serves the registry: systemd reads it
        # as root and hands it to the registry's own user, so no copy of the
        # key on disk is readable by that user.
        write_file 0644 "$UNIT_DIR/vxmesh-registry.service.d/tls.conf" <<EOF
# Written by deploy/provision.sh: the certificate /etc/vxmesh/registry.yml names.
[Service]
LoadCredential=cert:$ETC/tls/controller.pem
LoadCredential=key:$ETC/tls/controller-key.pem
EOF
    fi
    units+=(vxmesh-registry.service)
fi
if [[ $with_controller == 1 ]]; then
    config=$(render controller --header "$header" "${insecure_flag[@]}" "${registry_flag[@]}" \
        --listen "$address:$CONTROLLER_PORT,127.0.0.1:$CONTROLLER_PORT" --etcd "$(joined "${etcd_urls[@]}")")
    write_file 0644 "$ETC/controller.toml" <<<"$config"
    units+=(vxmesh-controller.service)
fi
if [[ $with_agent == 1 ]]; then
    # The plug-in socket only where an engine is to use it.
    plugin_flag=(--plugin-socket "")
    [[ -n $engines ]] && plugin_flag=(--plugin-socket /run/docker/plugins/vxmesh.sock)
    config=$(render agent --header "$header" "${insecure_flag[@]}" "${registry_flag[@]}" --name "$name" \
        --controller "$controllers" --vtep-ip "$address" "${plugin_flag[@]}")
    write_file 0644 "$ETC/agent.toml" <<<"$config"
    units+=(vxmesh-agent.service)
fi

if [[ $with_podman == 1 ]]; then
    # podman finds CNI plugins in /usr/lib/cni; vxmesh cni install writes
    # each network's conflist into /etc/cni/net.d.
    run install -d -m 0755 /usr/lib/cni /etc/cni/net.d
    run ln -sf "$PREFIX/venv/bin/vxmesh-cni" /usr/lib/cni/vxmesh-cni
    write_file 0644 /etc/containers/containers.conf.d/50-vxmesh.conf <<EOF
# Written by deploy/provision.sh: podman's networks through CNI, where vxmesh-cni plugs in.
[network]
network_backend = "cni"
EOF
fi
if [[ $with_docker == 1 ]]; then
    echo "# docker: docker network create -d vxmesh --ipam-driver vxmesh --subnet SUBNET -o vxmesh.network=NAME NAME"
fi

for unit in "${units[@]}"; do
    run install -m 0644 "$src/deploy/systemd/$unit" "$UNIT_DIR/$unit"
done
run systemctl daemon-reload
for unit in "${units[@]}"; do
    run systemctl enable "$unit"
    # --no-block: the first etcd member of a new cluster becomes ready only
    # once the others run, and they are provisioned after this host.
    run systemctl restart --no-block "$unit"
done
echo "# done: $(joined "${units[@]}"); logs: journalctl -u vxmesh-\\*"
