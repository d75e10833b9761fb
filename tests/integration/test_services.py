"""Services on a namespace lab, driven through the `vxmesh service` CLI.

One lab of three hosts and two controllers on one etcd: a service spreads
over the hosts, scales, replaces a killed task, gives up after its restart
attempts, survives the death of the controller that leads it during a
scale, and moves the tasks of a host whose agent is gone for good.
"""
from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from deploy.lab import Lab
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import containers
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=3, image=busybox_archive, etcd_members=1, controllers=2) as lab:
        yield lab


def tasks(lab: Lab, name: str, controller: int = 1) -> list[dict]:
    return json.loads(lab.cli("service", "ps", name, "--format", "json", controller=controller).stdout)


def running(lab: Lab, name: str, controller: int = 1) -> list[dict]:
    return [t for t in tasks(lab, name, controller) if t["state"] == "running"]


def settled(lab: Lab, name: str, count: int, controller: int = 1) -> bool:
    """Exactly `count` tasks, all running."""
    listed = tasks(lab, name, controller)
    return len(listed) == count and all(t["state"] == "running" for t in listed)


def create(lab: Lab, name: str, *options: str, command: tuple[str, ...] = ("sleep", "3600")) -> None:
    lab.cli("service", "create", "--name", name, "--network", "blue", *options, BUSYBOX, *command)


def remove(lab: Lab, name: str) -> None:
    lab.cli("service", "rm", name)
    assert not [c for c in containers(lab) if c["name"].startswith(f"{name}.")]


def test_a_service_spreads_one_task_per_host_scales_and_leaves_nothing(lab):
    create(lab, "web", "--replicas", "3")
    wait_for(lambda: settled(lab, "web", 3), 60, "three running tasks of web")
    listed = tasks(lab, "web")
    assert sorted(t["host"] for t in listed) == sorted(h.name for h in lab.hosts)
    assert sorted(t["slot"] for t in listed) == [1, 2, 3]
    assert all(t["addresses"]["blue"].startswith("10.77.0.") for t in listed)
    # Each task is a container of the service's image on blue, as `ps` shows it.
    by_name = {c["name"]: c for c in containers(lab)}
    assert all(by_name[t["name"]]["image"] == "busybox:latest" for t in listed)
    [row] = json.loads(lab.cli("service", "ls", "--format", "json").stdout)
    assert (row["name"], row["replicas"], row["running"]) == ("web", 3, 3)

    lab.cli("service", "scale", "web=5")
    wait_for(lambda: settled(lab, "web", 5), 60, "five running tasks")
    assert sorted(Counter(t["host"] for t in tasks(lab, "web")).values()) == [1, 2, 2]
    lab.cli("service", "scale", "web=2")
    wait_for(lambda: settled(lab, "web", 2), 60, "two running tasks")
    assert sorted(t["slot"] for t in tasks(lab, "web")) == [1, 2]
    remove(lab, "web")
    assert json.loads(lab.cli("service", "ls", "--format", "json").stdout) == []


def test_a_killed_task_is_replaced_after_its_back_off(lab):
    create(lab, "heal", "--replicas", "2", "--restart-delay", "500ms")
    wait_for(lambda: settled(lab, "heal", 2), 60, "two running tasks of heal")
    victim = tasks(lab, "heal")[0]
    killed = time.monotonic()
    lab.cli("kill", victim["name"])
    wait_for(lambda: settled(lab, "heal", 2) and victim["name"] not in {t["name"] for t in tasks(lab, "heal")},
             60, "the killed task replaced")
    print(f"killed task replaced and running in {time.monotonic() - killed:.1f}s")
    refill = next(t for t in tasks(lab, "heal") if t["slot"] == victim["slot"])
    assert refill["restarts"] == 1
    remove(lab, "heal")


def test_restart_on_failure_gives_up_after_max_attempts(lab):
    create(lab, "flaky", "-d", "--restart-condition", "on-failure", "--restart-max-attempts", "2",
           "--restart-delay", "200ms", command=("sh", "-c", "exit 3"))

    def gave_up() -> bool:
        listed = tasks(lab, "flaky")
        return len(listed) == 1 and listed[0]["restarts"] == 2 and listed[0]["state"] == "exited"
    wait_for(gave_up, 60, "the third attempt to end and stay")
    time.sleep(3)                                   # and no fourth
    [last] = tasks(lab, "flaky")
    assert (last["restarts"], last["state"], last["exit_code"]) == (2, "exited", 3)
    assert "exit 3" in lab.cli("service", "ps", "flaky").stdout
    remove(lab, "flaky")


def test_create_waits_for_its_tasks_and_fails_clearly_when_they_cannot_start(lab):
    began = time.monotonic()
    proc = lab.cli("service", "create", "--name", "waited", "--replicas", "3", BUSYBOX, "sleep", "3600")
    took = time.monotonic() - began
    assert proc.stdout.splitlines()[-1] == "verify: Service converged"
    assert len(running(lab, "waited")) == 3            # running when it returned, not later
    # A command that does not exist: no task can ever start.
    began = time.monotonic()
    proc = lab.cli("service", "create", "--name", "broken", "--replicas", "2", BUSYBOX, "/no/such/command",
                   check=False, timeout=240)
    failed = time.monotonic() - began
    assert proc.returncode == 1, proc
    assert "service broken did not converge: task broken." in proc.stderr and "failed" in proc.stderr, proc.stderr
    print(f"service create: converged in {took:.1f} s (3 tasks); a task that cannot start failed it in {failed:.1f} s")
    assert "broken" in {s["name"] for s in json.loads(lab.cli("service", "ls", "--format", "json").stdout)}
    # -d: at once, whatever becomes of the tasks.
    proc = lab.cli("service", "create", "-d", "--name", "detached", BUSYBOX, "/no/such/command")
    assert proc.returncode == 0 and "converge" not in proc.stdout + proc.stderr
    for name in ("waited", "broken", "detached"):
        remove(lab, name)


def test_bad_input_is_refused_before_anything_is_stored(lab):
    cases = [
        (("--name", "x", "--network", "nosuch", BUSYBOX), "network 'nosuch' not found"),
        (("--name", "x", "--constraint", "node.role==manager", BUSYBOX), "invalid constraint"),
        (("--name", "x", "--network", "host", BUSYBOX), "is not one"),
        (("--name", "x", "--restart-delay", "soon", BUSYBOX), "invalid --restart-delay"),
        (("--name", "x" * 50, BUSYBOX), "at most 45"),
    ]
    for argv, message in cases:
        proc = lab.cli("service", "create", *argv, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (argv, proc.stderr)
    assert json.loads(lab.cli("service", "ls", "--format", "json").stdout) == []
    proc = lab.cli("service", "scale", "nosuch=2", check=False)
    assert proc.returncode == 1 and "service 'nosuch' not found" in proc.stderr


def test_a_constraint_and_global_mode_choose_the_hosts(lab):
    target = lab.hosts[1].name
    create(lab, "pinned", "--replicas", "2", "--constraint", f"node.hostname=={target}")
    create(lab, "everywhere", "--mode", "global")
    wait_for(lambda: settled(lab, "pinned", 2), 60, "two pinned tasks")
    wait_for(lambda: settled(lab, "everywhere", 3), 60, "one global task per host")
    assert {t["host"] for t in tasks(lab, "pinned")} == {target}
    assert sorted(t["host"] for t in tasks(lab, "everywhere")) == sorted(h.name for h in lab.hosts)
    remove(lab, "pinned")
    remove(lab, "everywhere")


def test_the_leader_killed_during_a_scale_leaves_exactly_the_requested_tasks(lab):
    create(lab, "ha", "--replicas", "2")
    wait_for(lambda: settled(lab, "ha", 2), 60, "two tasks of ha")
    # Whichever controller leads, kill controller 1 right after the scale went through controller 2.
    lab.cli("service", "scale", "ha=7", controller=2)
    lab.stop_controller(1)
    try:
        wait_for(lambda: settled(lab, "ha", 7, controller=2), 90, "seven running tasks through controller 2")
        time.sleep(4)                               # later passes of the survivor add nothing
        listed = tasks(lab, "ha", controller=2)
        assert sorted(t["slot"] for t in listed) == list(range(1, 8))
        assert len([c for c in containers(lab, controller=2) if c["name"].startswith("ha.")]) == 7
    finally:
        lab.start_controller(1)
    lab.cli("service", "rm", "ha", controller=2)


def test_the_tasks_of_a_dead_host_are_rescheduled(lab):
    create(lab, "move", "--replicas", "3")
    wait_for(lambda: settled(lab, "move", 3), 60, "three tasks of move")
    gone = lab.hosts[2]
    lost = [t["name"] for t in tasks(lab, "move") if t["host"] == gone.name]
    stopped = time.monotonic()
    # Gone for good: its agent and its data plane (the liveness rule declares it dead
    # once its peers' probes of its VTEP go unanswered).
    lab.stop_agent(gone)
    lab.netns_exec(gone.netns, "ip", "link", "set", "eth0", "down")
    try:
        wait_for(lambda: settled(lab, "move", 3) and gone.name not in {t["host"] for t in tasks(lab, "move")},
                 90, "the dead host's task rescheduled")
        print(f"full strength again {time.monotonic() - stopped:.1f}s after the agent of {gone.name} died")
        assert not set(lost) & {t["name"] for t in tasks(lab, "move")}
    finally:
        lab.netns_exec(gone.netns, "ip", "link", "set", "eth0", "up")
        lab.start_agent(gone)
    # Back, the host tears down what it no longer holds.
    wait_for(lambda: not [c for c in containers(lab) if c["name"] in lost], 60, "the old task gone from the host")
    remove(lab, "move")


def test_service_logs_gathers_every_task_line_by_line(lab):
    create(lab, "talk", "--replicas", "2", command=("sh", "-c", "echo hello from $(hostname); echo bye; sleep 3600"))
    wait_for(lambda: settled(lab, "talk", 2), 60, "two tasks of talk")
    listed = tasks(lab, "talk")

    def complete() -> list[str]:
        lines = lab.cli("service", "logs", "talk").stdout.splitlines()
        return lines if len(lines) == 4 else []
    lines = wait_for(complete, 30, "both tasks' two lines")
    for task in listed:
        prefix = f"{task['name']}@{task['host']} | "
        assert [line[len(prefix):] for line in lines if line.startswith(prefix)] == [
            f"hello from {task['name'].rsplit('.', 1)[1]}", "bye"]
    remove(lab, "talk")


def test_a_rolling_update_replaces_every_task_and_a_failing_one_stops_it(lab):
    create(lab, "roll", "--replicas", "4", "-e", "V=1")
    wait_for(lambda: settled(lab, "roll", 4), 60, "four tasks of roll")
    # As Docker's, `service update` waits for the rollout, showing its progress.
    proc = lab.cli("service", "update", "--env-add", "V=2", "--update-parallelism", "2", "--update-delay", "1s",
                   "roll", timeout=240)
    lines = proc.stdout.splitlines()
    assert lines[0] == "roll" and lines[-1] == "verify: Service converged", lines
    assert "overall progress: 4 out of 4 tasks" in lines and len(lines) >= 4, lines
    [detail] = json.loads(lab.cli("service", "inspect", "roll").stdout)   # done when it returned, not later
    assert detail["update"]["state"] == "completed" and len(detail["tasks"]) == 4
    assert all(t["version"] == 1 and t["state"] == "running" for t in detail["tasks"]), detail["tasks"]
    for task in tasks(lab, "roll"):
        assert "V=2" in lab.cli("exec", task["name"], "--", "env").stdout.split()

    # A command that fails at once: the first batch fails, the rollout pauses and
    # the waiting update says why.
    failed = lab.cli("service", "update", "--args", "sh -c 'exit 1'", "--update-parallelism", "1", "roll",
                     check=False, timeout=240)
    assert failed.returncode == 1, failed
    assert ("service roll: the update paused" in failed.stderr
            or "service roll did not converge: task roll." in failed.stderr), failed.stderr

    def paused() -> dict:
        [detail] = json.loads(lab.cli("service", "inspect", "roll").stdout)
        return detail if detail["update"]["state"] == "paused" else {}
    detail = wait_for(paused, 60, "the rollout to pause")
    assert "of the new version failed" in detail["update"]["message"]
    time.sleep(3)
    listed = tasks(lab, "roll")
    # Three tasks still run the previous version; only the failed slot moved on.
    assert sorted(t["version"] for t in listed if t["state"] == "running") == [1, 1, 1]
    assert [t["version"] for t in listed if t["version"] == 2] == [2]
    remove(lab, "roll")


def test_update_moves_tasks_to_new_networks_ports_and_constraints_batch_by_batch(lab):
    """--network-add/-rm, --constraint-add, --env-add and --publish-add in one update:
    the tasks are replaced one at a time, 1 s apart, never fewer than two of three
    running; the VIP moves to the new network and the new port answers on a host."""
    excluded = lab.hosts[2]
    lab.cli("network", "create", "--subnet", "10.79.0.0/24", "green")
    serve = ("sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www")
    create(lab, "moving", "--replicas", "3", "--update-delay", "1s", command=serve)
    assert settled(lab, "moving", 3)
    began = time.monotonic()
    lab.cli("service", "update", "-d", "--network-add", "green", "--network-rm", "blue", "--env-add", "V=2",
            "--constraint-add", f"node.hostname!={excluded.name}", "--publish-add", "8090:80", "moving")
    fewest = 3

    def rolled() -> dict:
        nonlocal fewest
        [detail] = json.loads(lab.cli("service", "inspect", "moving").stdout)
        fewest = min(fewest, sum(1 for t in detail["tasks"] if t["state"] == "running"))
        done = (detail["update"]["state"] == "completed" and len(detail["tasks"]) == 3
                and all(t["version"] == 1 and t["state"] == "running" for t in detail["tasks"]))
        return detail if done else {}
    detail = wait_for(rolled, 120, "the update to complete", interval=0.2)
    took = time.monotonic() - began
    print(f"service update of networks, constraint, env and port: 3 tasks replaced one by one in {took:.1f} s; "
          f"at least {fewest} of 3 running throughout")
    assert fewest >= 2 and took >= 2.0                 # one at a time, two delays of 1 s between three batches
    assert detail["networks"] == ["green"] and list(detail["virtual_ips"]) == ["green"]
    assert detail["virtual_ips"]["green"].startswith("10.79.0.")
    assert detail["ports"] == ["8090:80/tcp"] and detail["constraints"] == [f"node.hostname!={excluded.name}"]
    for task in detail["tasks"]:
        assert list(task["addresses"]) == ["green"] and task["host"] != excluded.name
        assert "V=2" in lab.cli("exec", task["name"], "--", "env").stdout.split()
    suffixes = {t["name"].rsplit(".", 1)[1] for t in detail["tasks"]}
    host = lab.hosts[0].underlay_ip

    def answer() -> str:
        return lab.netns_exec(lab.ext_ns, "sh", "-c", f"timeout 2 wget -qO- http://{host}:8090/ || echo FAIL",
                              timeout=30).stdout.strip()
    assert wait_for(lambda: answer() in suffixes, 30, "port 8090 answered by a task")
    # The port goes again; a network the service is not on cannot be removed from it.
    lab.cli("service", "update", "--publish-rm", "8090", "moving")
    wait_for(lambda: answer() == "FAIL", 30, "port 8090 closed")
    bad = lab.cli("service", "update", "--network-rm", "blue", "moving", check=False)
    assert bad.returncode == 1 and "--network-rm blue: the service has no such network" in bad.stderr
    remove(lab, "moving")
    lab.cli("network", "rm", "green")


def test_a_port_of_the_routing_mesh_and_a_containers_port_refuse_each_other(lab):
    create(lab, "meshed", "-p", "8085:80")
    clash = lab.cli("run", "-d", "--name", "clash", "-p", "8085:80", BUSYBOX, "sleep", "3600", check=False)
    assert clash.returncode != 0
    assert "host port 8085/tcp is published by service 'meshed' on every host (the routing mesh)" in clash.stderr
    assert "clash" not in {c["name"] for c in containers(lab)}
    lab.cli("run", "-d", "--name", "holder", "--host", lab.hosts[1].name, "-p", "8086:80", BUSYBOX, "sleep", "3600")
    refused = lab.cli("service", "create", "--name", "late", "--network", "blue", "-p", "8086:80", BUSYBOX,
                      check=False)
    assert refused.returncode == 1
    assert (f"port 8086/tcp is already published by container 'holder' on host '{lab.hosts[1].name}'"
            in refused.stderr), refused.stderr
    assert "late" not in {s["name"] for s in json.loads(lab.cli("service", "ls", "--format", "json").stdout)}
    lab.cli("rm", "-f", "holder")
    remove(lab, "meshed")
