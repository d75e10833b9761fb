"""Two controllers on one etcd: concurrent requests through both, and failover.

The lab runs two controllers (namespaces ctl and ctl2) on a one-member etcd
cluster; every agent is given both addresses, as a deployed agent.toml
lists them. Requests go to both controllers at once and must never hand out
one address, MAC or network name twice; killing a controller moves its
agents to the other, which resumes them from their revision.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import time

import grpc
import pytest

from deploy.lab import Lab
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from tests.helpers.images import BUSYBOX
from tests.helpers.kernel_tables import desired_entries, kernel_entries, tables_match
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import containers, hosts_up, inspect, network, pings, run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

PARALLEL_RUNS = 50
FAILOVER_BOUND = 15.0   # seconds for every agent to be on the surviving controller


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=3, image=busybox_archive, etcd_members=1, controllers=2) as lab:
        yield lab


def health(lab: Lab, controller: int) -> dict:
    proc = lab.cli("health", "--format", "json", controller=controller, check=False)
    return json.loads(proc.stdout) if proc.stdout else {}


def everyone_pings(lab: Lab, names: list[str], controller: int) -> bool:
    ips = {n: inspect(lab, n, controller)["networks"]["blue"]["ip"] for n in names}
    return all(pings(lab, a, ips[b], controller) for a in names for b in names if a != b)


def cluster_state(lab: Lab, controller: int) -> dict:
    listed = containers(lab, controller)
    blue = network(lab, "blue", controller)
    return {"containers": sorted((c["id"], c["name"], c["host"], c["state"], json.dumps(c["networks"]))
                                 for c in listed),
            "blue": (blue["subnet"], blue["vni"], sorted((e["container"], e["ip"], e["mac"])
                                                         for e in blue["endpoints"]))}


async def run_many(lab: Lab, names: list[str]) -> list[grpc.aio.AioRpcError | None]:
    """`run` every name at once, alternating controllers and hosts."""
    channels = [grpc.aio.insecure_channel(f"unix://{lab.controller_socket_of(k)}") for k in (1, 2)]
    try:
        async def one(i: int, name: str):
            stub = pb_grpc.ControllerStub(channels[i % 2])
            request = pb.RunRequest(name=name, host=lab.hosts[i % len(lab.hosts)].name,
                                    networks=["conc"], image=BUSYBOX, command=["sleep", "3600"])
            try:
                await stub.Run(request, timeout=120)
            except grpc.aio.AioRpcError as err:
                return err
            return None
        return await asyncio.gather(*(one(i, n) for i, n in enumerate(names)))
    finally:
        for channel in channels:
            await channel.close()


def test_parallel_runs_through_two_controllers_get_distinct_addresses(lab):
    lab.cli("network", "create", "--subnet", "10.90.0.0/24", "conc")
    names = [f"par{i}" for i in range(PARALLEL_RUNS)]
    errors = asyncio.run(run_many(lab, names))
    assert [e for e in errors if e is not None] == [], [e.details() for e in errors if e is not None]
    listed = {c["name"]: c for c in json.loads(lab.cli("ps", "--format", "json").stdout) if c["name"] in names}
    assert set(listed) == set(names) and all(c["state"] == "running" for c in listed.values())
    ips = [c["networks"]["conc"]["ip"] for c in listed.values()]
    macs = [c["networks"]["conc"]["mac"] for c in listed.values()]
    assert len(set(ips)) == PARALLEL_RUNS and len(set(macs)) == PARALLEL_RUNS
    # The same from the other controller, and in every host's kernel.
    other = {c["name"]: c["networks"]["conc"] for c in json.loads(lab.cli("ps", "--format", "json",
                                                                           controller=2).stdout)}
    assert all(other[n] == listed[n]["networks"]["conc"] for n in names)
    wait_for(lambda: tables_match(lab, "conc"), 30, "every host's kernel table for conc")
    for host in range(len(lab.hosts)):
        rows = kernel_entries(lab, host, "conc")
        local = sum(1 for c in listed.values() if c["host"] == lab.hosts[host].name)
        assert len(rows) == PARALLEL_RUNS - local
        assert len({mac for mac, _, _ in rows}) == len({ip for _, ip, _ in rows}) == len(rows)


def test_one_network_name_created_through_both_controllers_at_once(lab):
    argvs = [lab.cli_argv("network", "create", "--subnet", f"10.9{k}.0.0/24", "twin", controller=k)
             for k in (1, 2)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in argvs]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _, _ in results) == [0, 1], results
    refused = next(err for rc, _, err in results if rc != 0)
    assert refused == "Error: network 'twin' already exists\n"
    listed = lab.cli("network", "ls").stdout.split()
    assert listed.count("twin") == 1


def test_killing_one_controller_then_both_loses_nothing(lab):
    a = run(lab, "fo1", 0)
    b = run(lab, "fo2", 1, controller=2)
    wait_for(lambda: pings(lab, "fo1", b["networks"]["blue"]["ip"]), 15, "fo1 to reach fo2")
    before = health(lab, 2)

    lab.stop_controller(1)                  # kill -9, as a crashed host
    wait_for(lambda: health(lab, 2).get("agents_connected") == len(lab.hosts), FAILOVER_BOUND,
             "every agent to move to controller 2")
    moved = health(lab, 2)
    # They came with the revision they had applied, and resumed from it.
    assert moved["resumes_served"] - before["resumes_served"] == len(lab.hosts)
    assert moved["snapshots_served"] == before["snapshots_served"]

    # A container created meanwhile through the survivor is reachable from every host.
    run(lab, "fo3", 2, controller=2)
    wait_for(lambda: everyone_pings(lab, ["fo1", "fo2", "fo3"], 2), 20, "fo1, fo2, fo3 to reach each other")
    for host in range(len(lab.hosts)):
        assert kernel_entries(lab, host, controller=2) == desired_entries(lab, host, controller=2)
    state = cluster_state(lab, 2)

    # Both gone, then both back: nothing written before is lost.
    lab.stop_controller(2)
    time.sleep(2)
    lab.start_controller(1)
    lab.start_controller(2)
    wait_for(lambda: sum(health(lab, k).get("agents_connected", 0) for k in (1, 2)) == len(lab.hosts),
             30, "every agent back on a controller")
    restarted = [health(lab, k) for k in (1, 2)]
    # A restarted controller rebuilds its history from etcd's: agents still resume.
    assert sum(h["snapshots_served"] for h in restarted) == 0, restarted
    assert cluster_state(lab, 1) == state
    wait_for(lambda: hosts_up(lab), 20, "every host up")
    wait_for(lambda: tables_match(lab), 20, "every host's kernel table for blue")
    assert everyone_pings(lab, ["fo1", "fo2", "fo3"], 1)
    assert a["networks"]["blue"] == inspect(lab, "fo1")["networks"]["blue"]
