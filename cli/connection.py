"""The CLI's channel to a controller: mutual TLS on TCP, plain on the controller host's unix socket."""
from __future__ import annotations

import argparse
import asyncio

import grpc

from cli.options import CliError
from transport.channels import Transport, is_unix

# How long the CLI waits for the controller to accept the connection.
CONNECT_SECONDS = 5.0


def transport_for(args: argparse.Namespace, address: str | None = None) -> Transport:
    """How to reach `address` (default: --controller)."""
    if is_unix(address if address is not None else args.controller):
        return Transport(None)  # root on the controller's host: no certificate needed
    if args.insecure:
        return Transport.insecure("vxmesh CLI")
    # Here, not at the top: the controller host's unix socket needs no certificates.
    from transport.tls import ROLES, Tls, TlsError, TlsFiles
    try:
        # Any of the cluster's certificates: the controller says what it may do.
        return Transport(Tls.load(TlsFiles(args.ca, args.cert, args.key), ROLES))
    except TlsError as err:
        raise CliError(f"{err} (set --ca/--cert/--key or VXMESH_CA/VXMESH_CERT/VXMESH_KEY)") from None


class ControllerChannel:
    """A channel to the controller whose connection failure reads as one line."""

    def __init__(self, address: str, transport: Transport):
        self.address = address
        self.channel = transport.channel(address)

    async def __aenter__(self) -> grpc.aio.Channel:
        try:
            await asyncio.wait_for(self.channel.channel_ready(), CONNECT_SECONDS)
        except asyncio.TimeoutError:
            await self.channel.close()
            raise CliError(f"cannot reach the controller at {self.address} "
                           "(is it running? set --controller or VXMESH_CONTROLLER)") from None
        return self.channel

    async def __aexit__(self, *exc) -> None:
        await self.channel.close()
