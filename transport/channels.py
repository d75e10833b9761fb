"""How one vxmesh process speaks gRPC: mutual TLS, or plain text when asked.

Servers made here with TLS require a client certificate from the cluster's
CA on every TCP port and check each call's role (transport/authz.py); channels
present this process's certificate and verify the server's. Plain text
exists only for `insecure = true` / `--insecure`, and says so in the log.

A unix socket is the host's local channel and is served without TLS, its
file made root-only (mode 0600): whoever can open it is root on the
controller's host, who can read the controller's own key and so act as the
controller anyway. TLS there would add files to manage and protect nothing.
(It is also what lets tools on the host, such as the namespace lab's CLI
and benchmarks, speak to a controller without certificates of their own.)
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    # Only for the annotation: a plain-text channel (the CLI on the controller's
    # unix socket) loads neither the certificates' module nor the servers' checks.
    from transport.tls import Tls

log = logging.getLogger(__name__)

INSECURE_WARNING = ("running WITHOUT TLS (insecure): anyone who reaches this process's ports can "
                    "act as any agent or user. Use it only on a private test network.")


@dataclass(frozen=True)
class Transport:
    tls: Tls | None        # None: plain text

    @classmethod
    def insecure(cls, who: str) -> Transport:
        log.warning("%s %s", who, INSECURE_WARNING)
        return cls(None)

    def channel(self, address: str, server_name: str = "",
                options: Sequence[tuple[str, object]] = ()) -> grpc.aio.Channel:
        """A channel to `address`; with TLS the server's certificate must name
        `server_name` (default: the host in `address`, `localhost` for unix sockets)."""
        if self.tls is None:
            return grpc.aio.insecure_channel(address, options=list(options))
        options = list(options)
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        return grpc.aio.secure_channel(address, self.tls.channel_credentials(), options=options)

    def server(self, options: Sequence[tuple[str, object]] = ()) -> grpc.aio.Server:
        from transport.authz import Authorizer
        interceptors = [Authorizer()] if self.tls is not None else []
        return grpc.aio.server(options=list(options), interceptors=interceptors)

    def add_port(self, server: grpc.aio.Server, address: str) -> None:
        if self.tls is None or is_unix(address):
            server.add_insecure_port(address)
        else:
            server.add_secure_port(address, self.tls.server_credentials())

    @property
    def description(self) -> str:
        if self.tls is None:
            return "plain text (insecure)"
        return f"mutual TLS as {self.tls.identity} (CA {self.tls.files.ca})"


def is_unix(address: str) -> bool:
    return address.startswith("unix:")
