"""`run --restart` on a lab: the host's agent starts exited containers again, as Docker does."""
from __future__ import annotations

import time

import pytest

from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=1, image=busybox_archive) as lab:
        yield lab


def run(lab, name: str, restart: str, *command: str) -> None:
    lab.cli("run", "-d", "--name", name, "--network", "blue", "--restart", restart, BUSYBOX, *command)


def test_on_failure_restarts_at_most_max_times(lab):
    run(lab, "fails", "on-failure:2", "sh", "-c", "sleep 0.2; exit 3")
    wait_for(lambda: (lambda c: c["restart_count"] == 2 and c["state"] == "exited")(inspect(lab, "fails")), 30,
             "the second restart to end")
    time.sleep(2)
    detail = inspect(lab, "fails")
    assert (detail["restart_count"], detail["state"], detail["exit_code"]) == (2, "exited", 3)
    assert detail["restart_policy"] == "on-failure:2"


def test_on_failure_leaves_a_clean_exit_alone_and_no_never_restarts(lab):
    run(lab, "clean", "on-failure", "true")
    run(lab, "never", "no", "sh", "-c", "exit 1")
    time.sleep(3)
    assert [(inspect(lab, n)["restart_count"], inspect(lab, n)["state"]) for n in ("clean", "never")] == [
        (0, "exited"), (0, "exited")]


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_a_killed_container_comes_back_and_a_stopped_one_stays_stopped(lab, policy):
    name = f"back-{policy}"
    run(lab, name, policy, "sleep", "3600")
    first = inspect(lab, name)["pid"]
    lab.cli("kill", name)
    wait_for(lambda: (lambda c: c["state"] == "running" and c["pid"] != first)(inspect(lab, name)), 30,
             "the killed container running again")
    assert inspect(lab, name)["restart_count"] == 1
    lab.cli("stop", "-t", "1", name)
    time.sleep(3)
    assert inspect(lab, name)["state"] == "exited"
