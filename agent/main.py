"""`vxmesh agent`: run this host's containers and program its data plane."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from agent import memory
from agent.convergers.embedded_dns import EmbeddedDns
from agent.dns.resolver import nameservers, parse_upstream
from agent.engines.cni import CniPlugin
from agent.engines.docker import DockerPlugin
from agent.engines.endpoints import EngineEndpoints, EnginesClient
from agent.engines.http_server import JsonServer
from agent.engines.docker_api import container_names as docker_container_names
from agent.engines.reclaim import Reclaimer
from agent.guards import control_plane_guards
from agent.host_networks import HostNetworks
from agent.images.registry import RegistryAccess
from agent.images.store import ImageStore
from agent.kernel.bridge import LocalBridgeSpec
from agent.kernel.gwbridge import GwBridgeSpec
from agent.kernel.overlay import underlay
from agent.link import ControllerLink
from agent.local_state import LocalState
from agent.names import DEFAULT_BRIDGE
from agent.oci.runtime import Runtime
from agent.probes import VtepProbes
from agent.reconcile import Reconciler
from agent.service import HostAgentService
from agent.view import View
from proto import validate
from proto.tools import skopeo_cert_dir
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.private_files import private_dir
from proto.records import Host
from transport.tls import Tls, TlsError, TlsFiles
from transport.channels import Transport

log = logging.getLogger(__name__)

AGENT_UMASK = 0o077


@dataclass
class AgentConfig:
    name: str
    controllers: list[str]
    vtep_ip: str
    api: str                               # where the HostAgent service listens
    state_root: Path = Path("/run/vxmesh")
    gwbridge_subnet: str = "172.18.0.0/16"
    gwbridge_gateway: str = "172.18.0.1"
    bridge_subnet: str = "172.17.0.0/16"   # the default "bridge" network (Docker's docker0)
    bridge_gateway: str = "172.17.0.1"
    vtep_filter: bool = True               # accept VXLAN only from live hosts' VTEPs
    port_security: bool = True             # container ports carry only their own MAC and addresses
    vtep_probes: bool = True               # probe the peers' VTEPs, for the controllers' liveness rule
    tls: TlsFiles | None = None            # the agent's CA, certificate and key
    insecure: bool = False                 # plain-text gRPC; tls is then ignored
    registry: str = ""                     # the cluster's image registry, HOST:PORT
    dns: list[str] = field(default_factory=list)   # resolvers to forward to; []: /etc/resolv.conf's
    plugin_socket: str = ""                # where engines (Docker, vxmesh-cni) call; "": none
    docker_api: str = ""                   # Docker's API socket, for its containers' names; "": not asked


def embedded_dns(config: AgentConfig) -> EmbeddedDns:
    """The resolver containers ask, forwarding to the configured resolvers or
    to this host's own (read once, at start)."""
    try:
        host_resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        host_resolv = ""
    servers = config.dns or nameservers(host_resolv)
    for_containers = [s.partition(":")[0] for s in servers if not s.startswith("127.") and ":" not in s]
    return EmbeddedDns(config.name, [parse_upstream(s) for s in servers], for_containers)


def agent_transport(config: AgentConfig) -> Transport:
    """The certificate must be this host's: the controller accepts an agent
    only under the name its certificate carries."""
    if config.insecure:
        return Transport.insecure(f"agent {config.name}")
    if config.tls is None:
        raise TlsError("the agent needs its CA, certificate and key (ca, cert, key), "
                       "or insecure = true for plain text")
    return Transport(Tls.load_apart(config.tls, ("agent",), config.name))


def registry_access(config: AgentConfig, state_dir: Path) -> RegistryAccess:
    """How this host pulls images: from the cluster's registry, verified with the
    cluster CA and presenting the agent's certificate (plain HTTP when insecure)."""
    if not config.registry:
        return RegistryAccess()
    if config.insecure or config.tls is None:
        return RegistryAccess(insecure=frozenset({config.registry}), cluster=config.registry)
    certs = skopeo_cert_dir(state_dir / "registry-certs", config.tls.ca, config.tls.cert, config.tls.key)
    return RegistryAccess(ca_dir=certs, cluster=config.registry)


async def serve(config: AgentConfig) -> None:
    validate.host_name(config.name)
    # What the agent and the tools it runs (conmon, crun, skopeo, umoci) create
    # is root's alone: their files hold containers' configs, environments and
    # logs (proto/private_files.py). Containers get Docker's 0022 (agent/oci/spec.py).
    os.umask(AGENT_UMASK)
    transport = agent_transport(config)
    vtep_link = await underlay(config.vtep_ip)
    mtu = vtep_link.mtu
    # Everything under it describes containers, their environment included: root's alone.
    state_dir = private_dir(config.state_root / config.name)
    # Cgroups are named after the host too: several agents may share one kernel.
    runtime = Runtime(private_dir(state_dir / "oci"), cgroup_parent=f"vxmesh-{config.name}")
    images = ImageStore(state_dir / "images", registry_access(config, state_dir))
    local = LocalState(state_dir / "local")
    view = View(config.name)
    # Its own subnets, so that no network is made over them (controller/store/networks.py).
    host = Host(name=config.name, vtep=config.vtep_ip, api=config.api, mtu=mtu,
                bridge_subnet=config.bridge_subnet, underlay_subnet=vtep_link.subnet,
                gwbridge_subnet=config.gwbridge_subnet)
    networks = HostNetworks(
        host=config.name, underlay_mtu=mtu,
        gwbridge=GwBridgeSpec(subnet=config.gwbridge_subnet, gateway=config.gwbridge_gateway, mtu=mtu),
        default_bridge=LocalBridgeSpec(name=DEFAULT_BRIDGE, subnet=config.bridge_subnet,
                                       gateway=config.bridge_gateway, mtu=mtu))

    reconciler: Reconciler | None = None
    link = ControllerLink(config.controllers, host, view,
                          on_update=lambda: reconciler.wake() if reconciler else None,
                          held_containers=lambda: sorted(local.load_all()), dial=transport.channel)
    reconciler = Reconciler(networks, config.vtep_ip, view, runtime, images, local, link,
                            vtep_filter=config.vtep_filter, port_security=config.port_security,
                            dns=embedded_dns(config),
                            guards=await control_plane_guards(config.api, config.controllers))

    server = transport.server()
    pb_grpc.add_HostAgentServicer_to_server(
        HostAgentService(config.name, view, runtime, on_change=reconciler.wake), server)
    transport.add_port(server, config.api)
    await server.start()
    plugin = None
    extra_tasks: list[asyncio.Task] = []
    if config.plugin_socket:
        engines_client = EnginesClient(config.controllers, transport.channel)
        docker_api = config.docker_api
        endpoints = EngineEndpoints(config.name, engines_client, reconciler.next_pass,
                                    reconciler.containers.wired.get, lambda name: name in view.containers(),
                                    reconciler.containers.adopting,
                                    (lambda cid, endpoint: docker_container_names(docker_api, cid, endpoint))
                                    if docker_api else None)
        plugin = JsonServer(Path(config.plugin_socket),
                            DockerPlugin(endpoints).handlers() | CniPlugin(endpoints).handlers())
        await plugin.start()
        reclaimer = Reclaimer(endpoints, lambda: [s for s in view.containers().values() if s.engine])
        extra_tasks.append(asyncio.create_task(reclaimer.run(), name="reclaim-engine-endpoints"))
    log.info("agent %s: vtep %s, underlay MTU %d, api %s, controllers %s, %s",
             config.name, config.vtep_ip, mtu, config.api, ", ".join(config.controllers),
             transport.description)

    tasks = [asyncio.create_task(link.run(), name="controller-link"),
             asyncio.create_task(reconciler.run(), name="reconcile"), *extra_tasks]
    if config.vtep_probes:
        probes = VtepProbes(config.name, config.vtep_ip, lambda: view.peer_vteps(), link.report_reachability)
        tasks.append(asyncio.create_task(probes.run(), name="vtep-probes"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    done_waiter = asyncio.create_task(stop.wait())
    finished, _ = await asyncio.wait([done_waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in tasks + [done_waiter]:
        task.cancel()
    await asyncio.gather(*tasks, done_waiter, return_exceptions=True)
    if plugin is not None:
        await plugin.close()
        await engines_client.close()
    await server.stop(grace=1.0)
    # Containers are left running on purpose: they outlive the agent.
    for task in finished:
        if task is not done_waiter and task.exception() is not None:
            raise task.exception()


def run(config: AgentConfig) -> None:
    memory.limit_arenas()   # before any thread starts (agent/memory.py says why)
    logging.basicConfig(level=os.environ.get("VXMESH_LOG", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(config))
