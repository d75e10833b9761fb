"""The Engines service: what an agent asks for the engines on its host.

Docker (through the agent's network and IPAM plug-in) and CNI runtimes
(through vxmesh-cni) never reach the controller themselves: the agent of
their host asks here for an address on a vxmesh network, records the
engine's namespace when the engine joins it, and removes the endpoint. Over
TLS an agent acts for the host its certificate names only
(transport/authz.py lets only agents in); on the unix socket, root on the
controller's machine may act for any host.
"""
from __future__ import annotations

import logging

from controller.store import Store
from controller.user_errors import user_errors
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from proto.errors import NotFound, PermissionDenied
from proto.records import PortMapping
from transport.tls import peer_identity

log = logging.getLogger(__name__)


def _check_caller(context, host: str) -> None:
    identity = peer_identity(context)
    if identity is not None and identity.name != host:
        raise PermissionDenied(f"{identity} may not act for host {host!r}")


class EnginesService(pb_grpc.EnginesServicer):
    def __init__(self, store: Store):
        self.store = store

    @user_errors
    async def Attach(self, request, context):
        _check_caller(context, request.host)
        spec = await self.store.engines.attach(
            request.host, request.engine, request.network, ip=request.ip, mac=request.mac,
            engine_id=request.engine_id, sandbox=request.sandbox,
            ports=tuple(PortMapping.from_wire(p) for p in request.ports), aliases=tuple(request.aliases))
        log.info("host %s: %s endpoint %s on %s at %s", spec.host, spec.engine, spec.name,
                 request.network, spec.attachments[0].ip)
        return spec.to_wire()

    @user_errors
    async def Join(self, request, context):
        _, spec = await self.store.get_container(request.name)
        _check_caller(context, spec.host)
        return (await self.store.engines.join(spec.host, request.name, request.engine_id,
                                              request.sandbox, request.interface, request.engine_endpoint,
                                              tuple(PortMapping.from_wire(p) for p in request.ports),
                                              request.engine_name, tuple(request.engine_aliases))).to_wire()

    @user_errors
    async def Detach(self, request, context):
        _, spec = await self.store.get_container(request.name)
        _check_caller(context, spec.host)
        await self.store.engines.owned(spec.host, request.name)
        # As `rm -f`: the rows go at once, the address once the host confirms.
        await self.store.delete_container(request.name)
        return pb.Empty()

    @user_errors
    async def Reclaim(self, request, context):
        _, spec = await self.store.get_container(request.name)
        _check_caller(context, spec.host)
        # Its engine forgot it: endpoint, address and status go in one transaction.
        await self.store.engines.reclaim(spec.host, request.name)
        return pb.Empty()

    @user_errors
    async def FindNetwork(self, request, context):
        try:
            network = await self.store.engines.find_network(request.name, request.subnet)
        except NotFound:
            if not (request.name and request.subnet):
                raise
            # `docker network create -o vxmesh.network=NAME --subnet ...` on the
            # first host: the vxmesh network is made with the engine's subnet.
            network = await self.store.create_network(request.name, request.subnet)
        return network.to_wire()

    @user_errors
    async def List(self, request, context):
        _check_caller(context, request.host)
        return pb.ContainerSpecList(specs=[s.to_wire() for s in await self.store.engines.list_on(request.host)])
