"""A controller killed during a burst of `run`s makes no ghost (cli/retry.py,
controller/store/requests.py).

Two controllers on a one-member etcd. 40 `run`s go through controller 1
(with controller 2 named after it) while controller 1 is killed and
restarted: every run that exited 0 has its container running, with the id
it printed; every one that failed has either no container, or (its outcome
unknown, exit 3) one that the same command adopts, exiting 0 with the same
id. The control shows what the request id buys: a run cut off with no other
controller to go to leaves a container behind, which a repeat without its
id is refused ("already exists") and a repeat with it adopts.
"""
from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from deploy.lab import Lab
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import containers, inspect
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

RUNS = 40
PARALLEL = 6
OUTCOME_UNKNOWN = 3


@pytest.fixture(scope="module")
def lab(busybox_archive):
    # A paused agent's heartbeats stop: a host TTL well past the pause keeps
    # its host "up", so the runs placed on it are taken, not refused.
    with lab_with_blue(hosts=3, image=busybox_archive, etcd_members=1, controllers=2,
                       controller_options={"host-ttl": 30}) as lab:
        yield lab


def run_argv(lab: Lab, name: str, index: int, request_id: str) -> tuple[str, ...]:
    return ("run", "-d", "--name", name, "--host", lab.hosts[index % len(lab.hosts)].name, "--network", "blue",
            "--request-id", request_id, BUSYBOX, "sleep", "3600")


def found(lab: Lab, name: str, controller: int = 2) -> dict | None:
    proc = lab.cli("inspect", name, check=False, controller=controller)
    return inspect(lab, name, controller) if proc.returncode == 0 else None


def stored(lab: Lab, prefix: str, host: str) -> int:
    listed = containers(lab, controller=2)
    return sum(c["name"].startswith(prefix) and c["host"] == host for c in listed)


def burst_with_a_kill(lab: Lab, prefix: str, controllers: list[int], restart_after: float | None):
    """RUNS runs through `controllers`, a third of them on h1 whose agent is
    paused, so its runs wait with their container stored but not confirmed: the
    moment a lost answer makes a ghost. Controller 1 is killed then (and
    restarted after `restart_after` s), and h1's agent resumed. [(argv, process)]"""
    argvs = [run_argv(lab, f"{prefix}{i}", i, secrets.token_hex(8)) for i in range(RUNS)]
    h1 = lab.hosts[0]
    lab.pause_agent(h1)
    paused = True
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            futures = [pool.submit(lab.cli, *argv, check=False, timeout=180, controller=controllers)
                       for argv in argvs]
            wait_for(lambda: stored(lab, prefix, h1.name) >= 1, 60, "a run on h1 waiting for its paused agent")
            lab.stop_controller(1)
            try:
                lab.resume_agent(h1)
                paused = False
                if restart_after is not None:
                    time.sleep(restart_after)
                    lab.start_controller(1)
                results = [f.result() for f in futures]
            finally:
                if restart_after is None:
                    lab.start_controller(1)
    finally:
        if paused:
            lab.resume_agent(h1)
    return list(zip(argvs, results))


def test_a_controller_killed_during_40_runs_leaves_no_ghost(lab):
    results = burst_with_a_kill(lab, "k", [1, 2], restart_after=3.0)
    codes = [proc.returncode for _, proc in results]
    moved = sum("with the same request id" in proc.stderr for _, proc in results)
    print(f"{RUNS} runs, controller 1 killed: exit codes {sorted(set(codes))}, "
          f"{codes.count(0)} succeeded, {moved} moved to the other controller mid-call")
    assert moved >= 1, "the kill hit no run in flight: the test proved nothing"
    for argv, proc in results:
        name = argv[3]
        container = found(lab, name)
        if proc.returncode == 0:
            assert container is not None, f"{name} exited 0 but does not exist"
            assert container["id"] == proc.stdout.strip()
            wait_for(lambda: found(lab, name)["state"] == "running", 30, f"{name} reported running")
        elif container is not None:
            assert proc.returncode == OUTCOME_UNKNOWN, (name, proc.returncode, proc.stderr)
            again = lab.cli(*argv, check=False, timeout=120, controller=[2, 1])
            assert again.returncode == 0 and again.stdout.strip() == container["id"], again.stderr
    lab.wait_hosts_up()


def test_control_a_run_cut_off_leaves_a_container_only_its_request_id_adopts(lab):
    # Through controller 1 alone, killed and not back until the burst is over:
    # the runs it was carrying cannot move on.
    results = burst_with_a_kill(lab, "g", [1], restart_after=None)
    cut_off = [(argv, proc) for argv, proc in results
               if proc.returncode == OUTCOME_UNKNOWN and found(lab, argv[3]) is not None]
    codes = [proc.returncode for _, proc in results]
    print(f"control: {len(cut_off)} runs cut off with their container stored; "
          f"{codes.count(0)} exited 0, {codes.count(1)} 1 (controller gone), {codes.count(OUTCOME_UNKNOWN)} 3")
    assert cut_off, "no run was cut off after its container was stored"
    argv, proc = cut_off[0]
    assert "the outcome is unknown" in proc.stderr and "--request-id" in proc.stderr
    without_id = [a for i, a in enumerate(argv) if a != "--request-id" and argv[i - 1] != "--request-id"]
    refused = lab.cli(*without_id, check=False, controller=2)
    assert refused.returncode == 125 and "already exists" in refused.stderr   # a refused run, as Docker
    adopted = lab.cli(*argv, check=False, timeout=120, controller=2)
    assert adopted.returncode == 0 and adopted.stdout.strip() == found(lab, argv[3])["id"]


def test_a_network_connect_cut_off_by_a_controller_kill_is_made_once(lab):
    """`network connect` through controller 1 (controller 2 named after it),
    held in flight by a paused agent after its change is stored, while
    controller 1 is killed: the CLI repeats it on controller 2 with the same
    request id, which answers with the first call's result instead of "already
    connected". The same for `network disconnect`."""
    lab.cli("network", "create", "--subnet", "10.78.0.0/24", "red", controller=[1, 2])
    h1 = lab.hosts[0]
    lab.cli("run", "-d", "--name", "nc1", "--host", h1.name, "--network", "blue", BUSYBOX, "sleep", "3600",
            controller=[2, 1])

    def cut_off(action: str, expect_red: bool) -> None:
        lab.pause_agent(h1)
        killed = False
        try:
            with ThreadPoolExecutor(1) as pool:
                future = pool.submit(lab.cli, "network", action, "red", "nc1", check=False, timeout=120,
                                     controller=[1, 2])
                wait_for(lambda: ("red" in found(lab, "nc1")["networks"]) == expect_red, 30,
                         f"the {action} stored, waiting for the paused agent")
                lab.stop_controller(1)
                killed = True
                lab.resume_agent(h1)
                proc = future.result()
        finally:
            lab.resume_agent(h1)
            if killed:
                lab.start_controller(1)
        print(f"network {action} cut off: exit {proc.returncode}, {proc.stderr.strip()!r}")
        assert "with the same request id" in proc.stderr, "the kill hit no call in flight: the test proved nothing"
        assert proc.returncode == 0, proc.stderr
        assert ("red" in found(lab, "nc1")["networks"]) == expect_red

    cut_off("connect", True)
    cut_off("disconnect", False)
    lab.cli("rm", "-f", "nc1", controller=[2, 1])
    lab.cli("network", "rm", "red", controller=[2, 1])
