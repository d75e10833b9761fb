"""`vxmesh host ls`, `vxmesh health`, `vxmesh tables HOST`: the cluster itself."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from cli.commands.common import RPC_TIMEOUT
from cli.output import host_json, host_rows, table
from proto import vxmesh_pb2 as pb
from proto.records import Host

if TYPE_CHECKING:   # the annotations' stubs; the commands get cli/stubs.py's
    from proto import vxmesh_pb2_grpc as pb_grpc

# Health answers within its own bound on etcd (controller/api.py); a bit more for the call.
HEALTH_TIMEOUT = 10.0


async def host(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    hosts = [Host.from_wire(h) for h in (await api.ListHosts(pb.Empty(), timeout=RPC_TIMEOUT)).hosts]
    print(json.dumps(host_json(hosts), indent=2) if args.format == "json" else host_rows(hosts))
    return 0


async def health(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    reply = await api.Health(pb.Empty(), timeout=HEALTH_TIMEOUT)
    if args.format == "json":
        print(json.dumps({"healthy": reply.healthy, "revision": reply.revision, "detail": reply.detail,
                          "agents_connected": reply.agents_connected,
                          "snapshots_served": reply.snapshots_served, "resumes_served": reply.resumes_served,
                          "resyncs_served": reply.resyncs_served}, indent=2))
    else:
        state = "healthy" if reply.healthy else f"unhealthy: {reply.detail}"
        print(f"{state}\netcd revision {reply.revision}, {reply.agents_connected} agents connected, "
              f"streams begun with {reply.snapshots_served} snapshots and {reply.resumes_served} resumes, "
              f"{reply.resyncs_served} resyncs")
    return 0 if reply.healthy else 1


async def tables(api: pb_grpc.ControllerStub, args: argparse.Namespace) -> int:
    reply = await api.HostTables(pb.HostTablesRequest(host=args.host, network=args.network), timeout=RPC_TIMEOUT)
    print(table([[e.network, str(e.vni), e.mac, e.ip, e.vtep] for e in reply.entries],
                ["NETWORK", "VNI", "MAC", "IP", "VTEP"]))
    return 0


COMMANDS = {"host": host, "health": health, "tables": tables}
