"""Who may call which vxmesh service, enforced on every call of a TLS server.

    Controller (the user API)        admin
    Images     (the cluster's images) admin
    Services   (swarm-like services) admin
    AgentLink  (the agents' stream)  agent   (AgentLink also checks the hello's host name)
    Engines    (engines' endpoints)  agent   (each call checks it is for the caller's host)
    HostAgent  (exec, logs, tables)  controller, admin

The handshake already refused clients without a certificate from the
cluster's CA; this interceptor refuses, with PERMISSION_DENIED and before the
method runs, a valid certificate of the wrong role, and any service not
listed here. Calls on a unix socket come from root on this host and are let
through (see transport/channels.py).
"""
from __future__ import annotations

import grpc

from proto import vxmesh_pb2 as pb
from transport.tls import Identity, article, peer_identity


def _service(name: str) -> str:
    return pb.DESCRIPTOR.services_by_name[name].full_name


ALLOWED_ROLES: dict[str, frozenset[str]] = {
    _service("Controller"): frozenset({"admin"}),
    _service("Images"): frozenset({"admin"}),
    _service("Services"): frozenset({"admin"}),
    _service("AgentLink"): frozenset({"agent"}),
    _service("Engines"): frozenset({"agent"}),
    _service("HostAgent"): frozenset({"controller", "admin"}),
}


def refusal(method: str, identity: Identity | None, local: bool = False) -> str | None:
    """Why `identity` may not call `method` ("/package.Service/Method"), or None if it may;
    `local`: the call came on a unix socket."""
    service = method.strip("/").split("/")[0]
    allowed = ALLOWED_ROLES.get(service)
    if allowed is None:
        return f"{method} is not a vxmesh service"
    if local:
        return None
    if identity is None:
        return f"{method} needs a vxmesh client certificate"
    if identity.role not in allowed:
        return (f"{identity} may not call {service.rsplit('.', 1)[-1]}; "
                f"that needs {article(' or '.join(sorted(allowed)))} certificate")
    return None


class Authorizer(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _guarded(handler, handler_call_details.method)


async def _check(method: str, context) -> None:
    # gRPC sets the peer from the transport; a client cannot choose it.
    local = context.peer().startswith("unix:")
    problem = refusal(method, peer_identity(context), local)
    if problem is not None:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, problem)


def _guarded(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    """The same handler, checking the caller before the method's own code runs."""
    codec = {"request_deserializer": handler.request_deserializer,
             "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        inner = handler.unary_unary

        async def unary_unary(request, context):
            await _check(method, context)
            return await inner(request, context)
        return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
    if handler.stream_unary:
        inner = handler.stream_unary

        async def stream_unary(requests, context):
            await _check(method, context)
            return await inner(requests, context)
        return grpc.stream_unary_rpc_method_handler(stream_unary, **codec)
    if handler.unary_stream:
        inner = handler.unary_stream

        async def unary_stream(request, context):
            await _check(method, context)
            async for response in inner(request, context):
                yield response
        return grpc.unary_stream_rpc_method_handler(unary_stream, **codec)
    inner = handler.stream_stream

    async def stream_stream(requests, context):
        await _check(method, context)
        async for response in inner(requests, context):
            yield response
    return grpc.stream_stream_rpc_method_handler(stream_stream, **codec)
