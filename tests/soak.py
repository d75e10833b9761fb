"""A bounded soak: churn containers while agents and controllers restart, then audit.

    python -m tests.soak [--seconds 180] [--hosts 3] [--seed N] [--keep]

Builds its own lab (two controllers on a one-member etcd cluster), creates
the overlay network `soak`, and until the time is up picks at random (each
of the faults at least once): run a container (through either controller,
on any host), remove one, kill -9 and restart an agent, kill -9 and restart
a controller, and the faults of controller/liveness.py and cli/retry.py:

- a burst of runs and rms through one controller (the other named after
  it) while that controller is killed: a request that exits 0 took effect,
  one whose outcome is unknown (exit 3) is repeated with its request id and
  must then exit 0;
- an agent held down past the host TTL but within the grace period: a
  container on its host must answer pings from another host throughout,
  and `host ls` must say "agent down";
- a host cut from the underlay: its endpoints must leave the other hosts'
  kernels within 10 s, and come back when it is plugged in again.

Then it waits for the cluster to settle and checks, on every host:

- the kernel's FDB/neighbour entries for `soak` equal the desired table;
- every container that should run runs (its pid is alive) and answers a
  ping from another host, asked again every second for at most 10 s (how
  long any took beyond its first ping is printed);
- no ghost and nothing lost: the containers that exist are exactly those
  the requests that succeeded left (a failed run made none);
- nothing leaked: the container namespaces, the veth ends on the gateway
  bridge and in the overlay, the cgroups and the agents' state directories
  are exactly those of the containers that exist.

Finally it takes the lab down and checks no namespace, cgroup or state
directory of it is left. Exit status 0 when everything held, 1 otherwise,
with one line per problem found.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from agent.names import container_netns, gw_veth, overlay_veth
from agent.oci.cgroups import HostCgroups
from deploy.lab import AGENT_STATE_ROOT, Lab
from deploy.lab_errors import LabCommandError, LabError
from deploy.topology import list_netns
from tests.helpers.kernel_tables import desired_entries, kernel_entries
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import new_test_prefix
from tests.helpers.lab_cli import containers, inspect, network

NETWORK, SUBNET = "soak", "10.120.0.0/22"
MAX_CONTAINERS = 24       # keeps the churn about changes rather than capacity
SETTLE_SECONDS = 60.0
# Once settled, a container answers at once: its own host's bridge holds its
# MAC (agent/kernel/veth.py), so an address reused from another host is no
# reason for a wait. More than this is a problem.
REACH_SECONDS = 10.0
# Errors a request may meet while a host or controller is restarting: the
# run is refused, nothing is half-made (the audit checks that).
TRANSIENT = ("is down", "has not yet confirmed", "cannot reach the controller", "try again")
OUTCOME_UNKNOWN = 3
BURST = 6                 # requests in flight while their controller is killed
HOST_TTL = 6.0            # the controllers' host-ttl: an agent held down longer shows "agent down"
DEAD_HOST_BOUND = 10.0    # seconds for a cut host's endpoints to leave the other kernels
FAULTS = ("burst with a controller kill", "agent held down", "underlay cut")


@dataclass
class Tally:
    actions: Counter = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # name -> whether the requests that succeeded left it existing: what the cluster must hold.
    expected: dict[str, bool] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)


def churn(lab: Lab, seconds: float, rng: random.Random, tally: Tally) -> None:
    deadline = time.monotonic() + seconds
    serial = 0
    pending_faults = list(FAULTS)
    rng.shuffle(pending_faults)
    while time.monotonic() < deadline or pending_faults:
        names = running_names(lab)
        roll = rng.random()
        controller = rng.choice(list(lab.controller_indexes))
        fault = pending_faults.pop() if pending_faults else None
        if fault is None and roll < 0.05:
            fault = rng.choice(FAULTS)
        if fault == "burst with a controller kill":
            serial = burst_with_a_kill(lab, rng, tally, serial, names)
        elif fault == "agent held down":
            serial = hold_agent_down(lab, rng, tally, serial)
        elif fault == "underlay cut":
            serial = cut_a_host(lab, rng, tally, serial)
        elif roll < 0.45 and len(names) < MAX_CONTAINERS:
            serial += 1
            host = rng.choice(lab.hosts).name
            request(lab, tally, "run", run_argv(f"s{serial}", host), controller)
        elif roll < 0.75 and names:
            request(lab, tally, "rm", ("rm", "-f", rng.choice(names)), controller)
        elif roll < 0.9:
            host = rng.choice(lab.hosts)
            lab.stop_agent(host)
            time.sleep(rng.uniform(0, 1.5))
            lab.start_agent(host)
            tally.actions["agent restart"] += 1
        else:
            lab.stop_controller(controller)
            time.sleep(rng.uniform(0, 1.5))
            lab.start_controller(controller)
            tally.actions["controller restart"] += 1


def run_argv(name: str, host: str) -> tuple[str, ...]:
    return ("run", "-d", "--name", name, "--host", host, "--network", NETWORK, BUSYBOX, "sleep", "3600")


def request(lab: Lab, tally: Tally, what: str, argv: tuple[str, ...], controller: int | list[int]) -> bool:
    """Make the request; an outcome unknown is repeated with its request id
    (which must then succeed). Whether it took effect."""
    argv = (argv[0], "--request-id", secrets.token_hex(8), *argv[1:])
    proc = lab.cli(*argv, check=False, timeout=120, controller=controller)
    if proc.returncode == OUTCOME_UNKNOWN:
        tally.actions[f"{what} repeated after an unknown outcome"] += 1
        proc = lab.cli(*argv, check=False, timeout=120, controller=list(lab.controller_indexes))
        if proc.returncode != 0:
            tally.problems.append(f"the repeat of `vxmesh {' '.join(argv)}` after an unknown outcome "
                                  f"failed: {proc.stderr.strip()}")
            return False
    name = argv[argv.index("--name") + 1] if what == "run" else argv[-1]
    if proc.returncode == 0:
        tally.actions[what] += 1
        if "with the same request id" in proc.stderr:
            tally.actions[f"{what} moved to another controller mid-call"] += 1
        tally.expected[name] = what == "run"
        return True
    if any(t in proc.stderr for t in TRANSIENT):
        tally.refused.append(f"{' '.join(argv[:5])}: {proc.stderr.strip()}")
    else:
        tally.problems.append(f"`vxmesh {' '.join(argv)}` failed: {proc.stderr.strip()}")
    return False


def burst_with_a_kill(lab: Lab, rng: random.Random, tally: Tally, serial: int, names: list[str]) -> int:
    """BURST runs and rms through one controller, killed while they are in flight."""
    controller = rng.choice(list(lab.controller_indexes))
    order = [controller] + [k for k in lab.controller_indexes if k != controller]
    jobs = []
    for _ in range(BURST):
        if names and rng.random() < 0.4:
            jobs.append(("rm", ("rm", "-f", names.pop(rng.randrange(len(names))))))
        else:
            serial += 1
            jobs.append(("run", run_argv(f"s{serial}", rng.choice(lab.hosts).name)))
    with ThreadPoolExecutor(BURST) as pool:
        futures = [pool.submit(request, lab, tally, what, argv, order) for what, argv in jobs]
        time.sleep(rng.uniform(0.8, 2.5))   # CLI start-up, then calls in flight
        lab.stop_controller(controller)
        time.sleep(rng.uniform(0.5, 2.0))
        lab.start_controller(controller)
        for future in futures:
            future.result()
    tally.actions["burst with a controller kill"] += 1
    return serial


def hold_agent_down(lab: Lab, rng: random.Random, tally: Tally, serial: int) -> int:
    """An agent stopped past the host TTL, within the grace period: a container
    on its host answers a peer's pings throughout."""
    held = rng.randrange(len(lab.hosts))
    other = (held + 1) % len(lab.hosts)
    serial += 2
    target, source = f"s{serial - 1}", f"s{serial}"
    if not (request(lab, tally, "run", run_argv(target, lab.hosts[held].name), 1)
            and request(lab, tally, "run", run_argv(source, lab.hosts[other].name), 1)):
        return serial
    ip = inspect(lab, target)["networks"][NETWORK]["ip"]
    lab.stop_agent(lab.hosts[held])
    seconds = HOST_TTL + rng.uniform(2, 8)
    stopped, lost, sent, states = time.monotonic(), 0, 0, set()
    try:
        while time.monotonic() - stopped < seconds:
            sent += 1
            lost += not pings(lab, source, ip)
            states.add(lab.host_states().get(lab.hosts[held].name))
    finally:
        lab.start_agent(lab.hosts[held])
    tally.figures.append(f"agent of {lab.hosts[held].name} held down {seconds:.0f}s: "
                         f"{lost} of {sent} pings lost, host ls said {sorted(s for s in states if s)}")
    if lost:
        tally.problems.append(f"{target} on {lab.hosts[held].name} lost {lost} of {sent} pings while its agent "
                              "was down within the grace period")
    if "agent down" not in states or "down" in states:
        tally.problems.append(f"`host ls` said {sorted(s for s in states if s)} for a host whose agent "
                              f"was held down {seconds:.0f}s (within the grace period)")
    tally.actions["agent held down"] += 1
    return serial


def cut_a_host(lab: Lab, rng: random.Random, tally: Tally, serial: int) -> int:
    """A host unplugged from the fabric: its endpoints leave the others' kernels in time."""
    cut = rng.randrange(len(lab.hosts))
    others = [i for i in range(len(lab.hosts)) if i != cut]
    for i in [cut, *others]:   # each host holds the network's table while it has a container on it
        serial += 1
        request(lab, tally, "run", run_argv(f"s{serial}", lab.hosts[i].name), 1)
    rows = {row for row in desired_entries(lab, others[0], NETWORK) if row[2] == lab.hosts[cut].underlay_ip}
    started = time.monotonic()
    lab.cut_underlay(lab.hosts[cut])
    gone_after = None
    try:
        while time.monotonic() - started < DEAD_HOST_BOUND + 5:
            if all(not rows & kernel_entries(lab, i, NETWORK) for i in others):
                gone_after = time.monotonic() - started
                break
            time.sleep(0.2)
    finally:
        lab.restore_underlay(lab.hosts[cut])
    tally.figures.append(f"{lab.hosts[cut].name} cut from the underlay: its {len(rows)} endpoints left the "
                         f"other kernels after {'never' if gone_after is None else f'{gone_after:.1f}s'}")
    if gone_after is None or gone_after > DEAD_HOST_BOUND:
        tally.problems.append(f"{lab.hosts[cut].name}'s endpoints were still in other kernels "
                              f"{DEAD_HOST_BOUND:.0f}s after it was cut from the underlay")
    try:
        lab.wait_hosts_up([lab.hosts[cut].name], timeout=60)
    except LabError as exc:
        tally.problems.append(f"{lab.hosts[cut].name} did not come back after its underlay was restored: {exc}")
    tally.actions["underlay cut"] += 1
    return serial


def pings(lab: Lab, source: str, ip: str) -> bool:
    return lab.cli("exec", source, "--", "ping", "-c", "1", "-W", "1", ip, check=False,
                   controller=list(lab.controller_indexes)).returncode == 0


def running_names(lab: Lab) -> list[str]:
    return sorted(c["name"] for c in containers(lab, timeout=60))


def settle(lab: Lab) -> str | None:
    """None once every host is up, every container runs and every table is right."""
    try:
        if set(lab.host_states().values()) != {"up"}:
            return "not every host is up"
        listed = containers(lab, timeout=60)
        if any(c["state"] != "running" for c in listed):
            return f"not running: {[c['name'] for c in listed if c['state'] != 'running']}"
        for i, host in enumerate(lab.hosts):
            if kernel_entries(lab, i, NETWORK) != desired_entries(lab, i, NETWORK):
                return f"{host.name}'s kernel table differs from the desired one"
    except (LabCommandError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None


def ghosts_and_losses(lab: Lab, tally: Tally) -> list[str]:
    """The containers that exist against those the successful requests left."""
    listed = {c["name"] for c in containers(lab, timeout=60)}
    want = {name for name, present in tally.expected.items() if present}
    problems = [f"ghost container {name}: no request that succeeded made it" for name in sorted(listed - want)]
    problems += [f"lost container {name}: its run succeeded and nothing removed it"
                 for name in sorted(want - listed)]
    return problems


def unreachable(lab: Lab, tally: Tally) -> list[str]:
    """Every container answers a ping from a container on another host once the
    cluster has settled. One that does not is asked again every second, and
    counts as unreachable for as long as that takes: more than REACH_SECONDS
    is a problem, any time at all a figure (a ping lost to a loaded machine
    shows there as about a second)."""
    listed = containers(lab, timeout=60)
    problems, slow = [], []
    for target in listed:
        sources = [c for c in listed if c["host"] != target["host"]][:1]
        if not sources:
            continue
        ip, source = target["networks"][NETWORK]["ip"], sources[0]
        first, tries = time.monotonic(), 1
        while not pings(lab, source["name"], ip):
            if time.monotonic() - first > REACH_SECONDS:
                problems.append(f"{target['name']} on {target['host']} does not answer {source['name']} on "
                                f"{source['host']} {REACH_SECONDS:.0f}s after the cluster settled")
                break
            tries += 1
            time.sleep(1.0)
        else:
            if tries > 1:
                slow.append(f"{target['name']} on {target['host']} after {time.monotonic() - first:.1f}s "
                            f"({tries} pings)")
    if slow:
        tally.figures.append(f"after settling, {len(listed) - len(slow)} of {len(listed)} containers answered "
                             f"their first ping; the others: {', '.join(slow)}")
    return problems


def audit(lab: Lab) -> list[str]:
    """What the hosts hold beyond (or short of) what the containers need."""
    problems = []
    listed = containers(lab, timeout=60)
    vni = network(lab, NETWORK)["vni"]
    present = set(list_netns())
    for host in lab.hosts:
        ids = {c["id"] for c in listed if c["host"] == host.name}
        want = {container_netns(host.name, cid) for cid in ids}
        have = {ns for ns in present if ns.startswith(f"vxm-{host.name}-c")}
        problems += _diff(f"{host.name}: container namespaces", have, want)
        problems += _diff(f"{host.name}: veths on the gateway bridge",
                          _links(host.netns, "gw"), {gw_veth(cid) for cid in ids})
        overlay = f"vxm-{host.name}-ov{vni}"
        problems += _diff(f"{host.name}: veths in {overlay}", _links(overlay, "ve") if overlay in present else set(),
                          {overlay_veth(cid, 0) for cid in ids})
        have_groups = HostCgroups.detect().container_ids(f"vxmesh-{host.name}")
        problems += _diff(f"{host.name}: cgroups", have_groups, ids)
        state = AGENT_STATE_ROOT / host.name / "oci" / "containers"
        have_state = {d.name for d in state.iterdir()} if state.is_dir() else set()
        problems += _diff(f"{host.name}: state directories", have_state, ids)
        for c in listed:
            if c["host"] == host.name and not (c["pid"] > 0 and Path(f"/proc/{c['pid']}").exists()):
                problems.append(f"{host.name}: container {c['name']} has no live process (pid {c['pid']})")
    return problems


def _links(netns: str, prefix: str) -> set[str]:
    out = subprocess.run(["ip", "-n", netns, "-j", "link", "show", "type", "veth"],
                         capture_output=True, text=True, check=True).stdout
    return {link["ifname"] for link in json.loads(out or "[]") if link["ifname"].startswith(prefix)}


def _diff(what: str, have: set[str], want: set[str]) -> list[str]:
    out = []
    if have - want:
        out.append(f"{what}: leaked {sorted(have - want)}")
    if want - have:
        out.append(f"{what}: missing {sorted(want - have)}")
    return out


def leftovers(lab: Lab) -> list[str]:
    found = [ns for ns in list_netns() if ns.startswith((f"{lab.prefix}-", f"vxm-{lab.prefix}-"))]
    for host in lab.hosts:
        found += [str(h / f"vxmesh-{host.name}") for h in HostCgroups.detect().hierarchies
                  if (h / f"vxmesh-{host.name}").exists()]
        if (AGENT_STATE_ROOT / host.name).exists():
            found.append(str(AGENT_STATE_ROOT / host.name))
    return found


def soak(seconds: float, hosts: int, seed: int, keep: bool = False) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    lab = Lab(new_test_prefix(), hosts=hosts, etcd_members=1, controllers=2)
    try:
        lab.up()
        lab.load_busybox()
        lab.cli("network", "create", "--subnet", SUBNET, NETWORK)
        churn(lab, seconds, rng, tally)
        deadline = time.monotonic() + SETTLE_SECONDS
        while (reason := settle(lab)) is not None:
            if time.monotonic() > deadline:
                tally.problems.append(f"did not settle within {SETTLE_SECONDS:.0f}s: {reason}")
                break
            time.sleep(0.5)
        tally.problems += ghosts_and_losses(lab, tally)
        tally.problems += unreachable(lab, tally)
        tally.problems += audit(lab)
    except (LabError, subprocess.TimeoutExpired) as exc:
        tally.problems.append(f"the lab failed: {exc}")
    finally:
        if not keep:
            lab.down()
            tally.problems += [f"left behind after `lab down`: {x}" for x in leftovers(lab)]
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 180)))
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="for a repeatable run (default: random)")
    parser.add_argument("--keep", action="store_true", help="leave the lab up to look at it")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("error: the soak builds a namespace lab and needs root", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    started = time.monotonic()
    tally = soak(args.seconds, args.hosts, seed, args.keep)
    done = ", ".join(f"{n} {what}" for what, n in sorted(tally.actions.items())) or "nothing"
    print(f"soak (seed {seed}) ran {time.monotonic() - started:.0f}s: {done}; "
          f"{len(tally.refused)} requests refused while something restarted")
    for figure in tally.figures:
        print(f"  {figure}")
    for problem in tally.problems:
        print(f"PROBLEM: {problem}")
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
