"""A bounded soak: churn containers while agents and controllers restart, then audit.

    python -m tests.soak [--seconds 180] [--hosts 3] [--seed N] [--keep]

Builds its own lab (two controllers on a one-member etcd cluster), creates
the overlay network `soak`, and until the time is up picks at random: run a
container (through either controller, on any host), remove one, kill -9 and
restart an agent, or kill -9 and restart a controller. Then it waits for the
cluster to settle and checks, on every host:

- the kernel's FDB/neighbour entries for `soak` equal the desired table;
- every container that should run runs (its pid is alive);
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
import subprocess
import sys
import time
from collections import Counter
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
from tests.helpers.lab_cli import containers, network

NETWORK, SUBNET = "soak", "10.120.0.0/22"
MAX_CONTAINERS = 24       # keeps the churn about changes rather than capacity
SETTLE_SECONDS = 60.0
# Errors a request may meet while a host or controller is restarting: the
# run is refused, nothing is half-made (the audit checks that).
TRANSIENT = ("is down", "has not yet confirmed", "cannot reach the controller", "try again")


@dataclass
class Tally:
    actions: Counter = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def churn(lab: Lab, seconds: float, rng: random.Random, tally: Tally) -> None:
    deadline = time.monotonic() + seconds
    serial = 0
    while time.monotonic() < deadline:
        names = running_names(lab)
        roll = rng.random()
        controller = rng.choice(list(lab.controller_indexes))
        if roll < 0.45 and len(names) < MAX_CONTAINERS:
            serial += 1
            host = rng.choice(lab.hosts).name
            request(lab, tally, "run", ("run", "-d", "--name", f"s{serial}", "--host", host, "--network", NETWORK,
                                        BUSYBOX, "sleep", "3600"), controller)
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


def request(lab: Lab, tally: Tally, what: str, argv: tuple[str, ...], controller: int) -> None:
    proc = lab.cli(*argv, check=False, timeout=90, controller=controller)
    if proc.returncode == 0:
        tally.actions[what] += 1
    elif any(t in proc.stderr for t in TRANSIENT):
        tally.refused.append(f"{' '.join(argv[:3])}: {proc.stderr.strip()}")
    else:
        tally.problems.append(f"`vxmesh {' '.join(argv)}` failed: {proc.stderr.strip()}")


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
    for problem in tally.problems:
        print(f"PROBLEM: {problem}")
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
