"""The lab's "outside world": a TCP server that tells each client its address.

Every connection gets one line, `hello <peer-ip>\\n`, then is closed, so a
test can see which source address reached the outside (a container's own
address, or its host's after NAT).

    python -m deploy.ext_server --listen 10.231.0.100 --port 8080
"""
from __future__ import annotations

import argparse
import asyncio
import sys


def greeting(peer_ip: str) -> bytes:
    return f"hello {peer_ip}\n".encode()


async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer_ip = writer.get_extra_info("peername")[0]
    try:
        writer.write(greeting(peer_ip))
        await writer.drain()
    except ConnectionError:
        pass  # the client left first; it does not need its greeting any more
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(greet, host, port)
    addresses = ", ".join(str(sock.getsockname()) for sock in server.sockets)
    print(f"ext server listening on {addresses}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.ext_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="10.231.0.100", help="address to bind")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.listen, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
