"""A host killed for good: its rescheduled tasks' addresses stay reserved for the
controller's `dead-host-release` bound (the host might come back with them), then
are freed; a container that still exists keeps its address however long its host
stays away. Checked as a user would: `run --ip` of the address is refused, then works."""
from __future__ import annotations

import json
import time

import pytest

from deploy.lab import Lab
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

RELEASE = 20     # seconds: far above the rescheduling's grace, so "still reserved" is seen


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=3, image=busybox_archive, controller_options={"dead-host-release": RELEASE}) as lab:
        yield lab


def tasks(lab: Lab, name: str) -> list[dict]:
    return json.loads(lab.cli("service", "ps", name, "--format", "json").stdout)


def run_at(lab: Lab, name: str, ip: str):
    """`run -d --ip IP` on the first host: the CLI's answer."""
    return lab.cli("run", "-d", "--name", name, "--host", lab.hosts[0].name, "--network", "blue", "--ip", ip,
                   BUSYBOX, "sleep", "3600", check=False)


def test_a_dead_hosts_task_addresses_are_freed_after_the_bound_but_not_a_living_containers(lab):
    gone = lab.hosts[2]
    lab.cli("service", "create", "--name", "spread", "--replicas", "3", "--network", "blue", BUSYBOX, "sleep", "3600")
    [lost] = [t for t in tasks(lab, "spread") if t["host"] == gone.name]
    lost_ip = lost["addresses"]["blue"]
    kept_ip = run(lab, "stays", 2)["networks"]["blue"]["ip"]       # a plain container on the same host
    killed = time.monotonic()
    lab.stop_agent(gone)                                           # for good: never started again
    lab.netns_exec(gone.netns, "ip", "link", "set", "eth0", "down")
    wait_for(lambda: len([t for t in tasks(lab, "spread") if t["state"] == "running" and t["host"] != gone.name]) == 3
             and len(tasks(lab, "spread")) == 3, 90, "the dead host's task rescheduled")
    rescheduled = time.monotonic() - killed
    # Within the bound the address is still the old task's: the host might come back with it.
    early = run_at(lab, "early", lost_ip)
    assert early.returncode != 0 and f"address {lost_ip} is already in use" in early.stderr, early.stderr
    assert time.monotonic() - killed < RELEASE                      # the refusal came before any release could

    def taken_again() -> bool:
        return run_at(lab, "reuse", lost_ip).returncode == 0
    wait_for(taken_again, 90, f"{lost_ip} free again", interval=1.0)
    freed = time.monotonic() - killed
    print(f"dead host: task rescheduled {rescheduled:.1f} s after the kill, its address free again after "
          f"{freed:.1f} s (dead-host-release {RELEASE} s)")
    assert freed >= RELEASE
    # The container that still exists on the dead host keeps its address.
    refused = run_at(lab, "thief", kept_ip)
    assert refused.returncode != 0 and f"address {kept_ip} is already in use" in refused.stderr, refused.stderr
    assert "stays" in {c["name"] for c in json.loads(lab.cli("ps", "-a", "--format", "json").stdout)}
    lab.cli("rm", "-f", "reuse")
    lab.cli("service", "rm", "spread")
