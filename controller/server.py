"""`vxmesh controller`: wire etcd, the state cache and the gRPC services together."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
from dataclasses import dataclass, field

from proto.addresses import DEFAULT_ADDRESS_POOLS
from pathlib import Path


from controller.agent_feed import FeedCounters
from controller import agent_link
from controller.agent_link import AgentLinkService
from controller.api import ControllerService
from controller.cache import StateCache
from controller.embedded_etcd import EmbeddedEtcd
from controller.engines_api import EnginesService
from controller.etcd import Etcd
from controller.images.cluster_images import ClusterImages
from controller.images.registry_api import RegistryApi
from controller.images.service import ImagesService
from controller.images.skopeo import Skopeo
from controller.keys import Keys
from controller.liveness import DEFAULT_GRACE_SECONDS
from controller.liveness_keeper import LivenessKeeper
from controller.presence import Presence
from controller.services.api import ServicesService
from controller.services.election import Election
from controller.services.reconciler import DEFAULT_DEAD_HOST_RELEASE, ROLE, Reconciler
from controller.store import Store
from proto import vxmesh_pb2_grpc as pb_grpc
from transport.tls import Tls, TlsError, TlsFiles, check_etcd_client
from transport.channels import Transport

log = logging.getLogger(__name__)

# Bounds every message a client may send us (a misbehaving client gets
# RESOURCE_EXHAUSTED instead of making the controller buffer it).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass
class ControllerConfig:
    listen: list[str] = field(default_factory=lambda: ["127.0.0.1:7946"])
    etcd: list[str] = field(default_factory=list)   # empty: run a private etcd
    data_dir: Path = Path("/var/lib/vxmesh/etcd")
    default_address_pools: list[str] = field(default_factory=lambda: list(DEFAULT_ADDRESS_POOLS))
    prefix: str = "/vxmesh/"
    host_ttl: int = 6
    agent_grace: int = DEFAULT_GRACE_SECONDS   # controller/liveness.py
    dead_host_release: int = DEFAULT_DEAD_HOST_RELEASE   # controller/services/reconciler.py
    tls: TlsFiles | None = None        # the controller's CA, certificate and key
    insecure: bool = False             # plain-text gRPC; tls is then ignored
    etcd_tls: TlsFiles | None = None   # etcd CA and client certificate (https:// members, the private etcd)
    registry: str = ""                 # the cluster's image registry, HOST:PORT


def controller_transport(config: ControllerConfig) -> Transport:
    """Checked before anything starts: a wrong certificate is one line at start,
    not a handshake failure on every agent later."""
    if config.insecure:
        return Transport.insecure("controller")
    if config.tls is None:
        raise TlsError("the controller needs its CA, certificate and key (ca, cert, key), "
                       "or insecure = true for plain text")
    return Transport(Tls.load(config.tls, ("controller",)))


def etcd_client_tls(config: ControllerConfig) -> TlsFiles | None:
    """The files the controller reaches etcd with (and serves its private etcd
    with), checked before anything starts; None where etcd speaks plain text."""
    uses_tls = not config.etcd or any(e.startswith("https://") for e in config.etcd)
    if config.insecure or not uses_tls:
        return None
    if config.etcd_tls is None:
        raise TlsError("the controller needs its etcd CA, client certificate and key "
                       "(etcd-ca, etcd-cert, etcd-key), or insecure = true for plain text")
    assert config.tls is not None    # controller_transport refused a controller without
    check_etcd_client(config.etcd_tls, config.tls.ca)
    return config.etcd_tls


async def serve(config: ControllerConfig) -> None:
    transport = controller_transport(config)
    private_tls = etcd_client_tls(config)
    async with contextlib.AsyncExitStack() as stack:
        endpoints = config.etcd
        if not endpoints:
            # Its clients need a certificate too, unless everything is plain text.
            embedded = await stack.enter_async_context(EmbeddedEtcd(config.data_dir, tls=private_tls))
            endpoints = [embedded.endpoint]
        etcd_tls = config.etcd_tls if any(e.startswith("https://") for e in endpoints) else None
        etcd = await Etcd.connect(endpoints, ca=etcd_tls and etcd_tls.ca, cert=etcd_tls and etcd_tls.cert,
                                  key=etcd_tls and etcd_tls.key)
        stack.push_async_callback(etcd.close)

        keys = Keys(config.prefix)
        store = Store(etcd, config.prefix, address_pools=tuple(config.default_address_pools))
        await store.ensure_builtin_networks()
        cache = StateCache(etcd, keys)
        await cache.start()
        stack.push_async_callback(cache.stop)

        feeds = FeedCounters()
        images = cluster_images(config) if config.registry else None
        api = ControllerService(store, cache, feeds, agent_transport=transport, images=images)
        stack.push_async_callback(api.close)
        server = transport.server(options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ])
        pb_grpc.add_ControllerServicer_to_server(api, server)
        agents = AgentLinkService(store, cache, config.host_ttl, feeds, grace=config.agent_grace)
        agent_link.add_to_server(agents, server)
        pb_grpc.add_ImagesServicer_to_server(ImagesService(images, store), server)
        pb_grpc.add_ServicesServicer_to_server(ServicesService(store, cache, images, api), server)
        pb_grpc.add_EnginesServicer_to_server(EnginesService(store), server)
        for address in config.listen:
            _prepare_unix_socket(address)
            transport.add_port(server, address)
        await server.start()
        for address in config.listen:
            _restrict_unix_socket(address)
        log.info("controller listening on %s (etcd %s, prefix %s), %s",
                 ", ".join(config.listen), ",".join(endpoints), config.prefix, transport.description)
        # Where it listens and the etcd it uses, for the agents' guards (controller/presence.py).
        presence = Presence(store.controllers, etcd, store.controller_id, config.listen, endpoints,
                            config.host_ttl)
        announcing = asyncio.create_task(presence.run(), name="presence")
        keeping = asyncio.create_task(LivenessKeeper(store, cache, config.agent_grace).run(), name="liveness")
        # Every controller campaigns; the one that leads keeps the services' tasks running.
        reconciler = Reconciler(store, cache, Election(etcd, keys, ROLE, store.controller_id),
                                release_after=config.dead_host_release)
        reconciling = asyncio.create_task(reconciler.run(), name="services")
        try:
            await _until_signalled()
        finally:
            for task in (announcing, keeping, reconciling):
                task.cancel()
            await asyncio.gather(announcing, keeping, reconciling, return_exceptions=True)
            await presence.withdraw()
            await server.stop(grace=1.0)
            # Its agents' keys are left to their lease, as when a controller dies:
            # an agent that moves to another controller within host_ttl never shows as down.
            await agents.close()


def cluster_images(config: ControllerConfig) -> ClusterImages:
    """The cluster's registry as the controller reaches it: verified with the cluster
    CA, presenting the controller's certificate (plain HTTP when insecure)."""
    if config.insecure or config.tls is None:
        return ClusterImages(config.registry, RegistryApi(config.registry, None), Skopeo(config.registry, None))
    context = ssl.create_default_context(cafile=str(config.tls.ca))
    context.load_cert_chain(str(config.tls.cert), str(config.tls.key))
    return ClusterImages(config.registry, RegistryApi(config.registry, context),
                         Skopeo(config.registry, (config.tls.ca, config.tls.cert, config.tls.key)))


def _prepare_unix_socket(address: str) -> None:
    """A socket file left by a killed controller would make the bind fail."""
    if address.startswith("unix://"):
        path = Path(address[len("unix://"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _restrict_unix_socket(address: str) -> None:
    """The unix socket is the host's local channel, served without TLS
    (transport/channels.py): only root may connect to it."""
    if address.startswith("unix://"):
        os.chmod(address[len("unix://"):], 0o600)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def run(config: ControllerConfig) -> None:
    logging.basicConfig(level=os.environ.get("VXMESH_LOG", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(config))
