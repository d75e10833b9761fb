"""A service's client stub for the CLI, each method made on its first use.

The generated module (proto/vxmesh_pb2_grpc.py) is 2,000 lines: a stub, a
servicer and a registration function for each of the six services, every
stub making a callable for each method of its service in its constructor. A
CLI command calls one or two methods, and importing that module alone cost
some 15 ms of a `vxmesh ps`'s CPU (more under load). `Stub` takes the same facts (the method's path, whether
each side streams, the message types) from the service's descriptor in
proto/vxmesh_pb2.py, which the CLI has loaded anyway, and makes only the
callables asked for. A command sees the same attribute and call as on the
generated stub (`await api.Run(request, timeout=...)`).
"""
from __future__ import annotations

import grpc

from proto import vxmesh_pb2 as pb


class Stub:
    def __init__(self, channel: grpc.aio.Channel, service: str):
        # KeyError for a service the proto does not define: a programming error, not the user's.
        self._service = pb.DESCRIPTOR.services_by_name[service]
        self._channel = channel

    def __getattr__(self, name: str):
        method = self._service.methods_by_name.get(name)
        if method is None:
            raise AttributeError(f"service {self._service.name} has no method {name!r}")
        kind = ("stream" if method.client_streaming else "unary") + "_" + (
            "stream" if method.server_streaming else "unary")
        call = getattr(self._channel, kind)(
            f"/{self._service.full_name}/{name}",
            request_serializer=_message_class(method.input_type).SerializeToString,
            response_deserializer=_message_class(method.output_type).FromString,
            _registered_method=True)
        setattr(self, name, call)   # made once: __getattr__ is asked only for what is not set
        return call


def _message_class(descriptor):
    """The generated class of a message of vxmesh.proto (every one is top-level there)."""
    if descriptor.file is not pb.DESCRIPTOR or descriptor.containing_type is not None:
        raise TypeError(f"{descriptor.full_name} is not a top-level message of vxmesh.proto")
    return getattr(pb, descriptor.name)
