"""An image's HEALTHCHECK as containers run it: Docker's forms and defaults, and who wins."""
from __future__ import annotations

import pytest

from agent.health import Check, check_for
from controller.run_options import RunImage, RunOptions, with_image
from proto.image_config import HealthSettings, Healthcheck
from proto.records import ContainerSpec

SECOND = 1_000_000_000


@pytest.mark.parametrize("test, cmd", [
    (("CMD-SHELL", "wget -q localhost || exit 1"), "wget -q localhost || exit 1"),
    (("CMD", "test", "-e", "/tmp/a file"), "test -e '/tmp/a file'"),    # exec form: words kept whole
])
def test_both_forms_become_a_shell_command_with_dockers_defaults(test, cmd):
    assert Healthcheck(test).settings() == HealthSettings(cmd, 30.0, 30.0, 3, 0.0)


def test_the_images_own_timing_is_kept():
    check = Healthcheck(("CMD-SHELL", "true"), interval_ns=SECOND // 2, timeout_ns=2 * SECOND,
                        start_period_ns=5 * SECOND, retries=7)
    assert check.settings() == HealthSettings("true", 0.5, 2.0, 7, 5.0)


@pytest.mark.parametrize("test", [("NONE",), (), ("CMD",), ("CMD-SHELL",)])
def test_none_or_an_empty_test_is_no_check(test):
    assert Healthcheck(test).settings() is None


IMAGE = RunImage("docker.io/library/x:latest", "sha256:d", "sha256:i", (),
                 HealthSettings("test -e /ok", 1.0, 2.0, 4, 3.0))


def test_a_container_gets_its_images_check_unless_it_has_its_own_or_none():
    taken = with_image(RunOptions(), IMAGE)
    assert (taken.health_cmd, taken.health_interval, taken.health_timeout, taken.health_retries,
            taken.health_start_period) == ("test -e /ok", 1.0, 2.0, 4, 3.0)
    own = with_image(RunOptions(health_cmd="true", health_interval=9.0, health_timeout=9.0, health_retries=1), IMAGE)
    assert (own.health_cmd, own.health_interval) == ("true", 9.0)
    off = with_image(RunOptions(no_healthcheck=True), IMAGE)
    assert off.health_cmd == ""
    assert with_image(RunOptions(), RunImage("r", "d", "i")).health_cmd == ""


def test_the_agent_runs_the_specs_command_with_its_start_period():
    spec = ContainerSpec(name="c", id="x", host="h", health_cmd="test -e /ok", health_interval=1.0, health_timeout=2.0,
                         health_retries=4, health_start_period=3.0)
    assert check_for(spec) == Check(("sh", "-c", "test -e /ok"), 1.0, 2.0, 4, 3.0)
    assert check_for(ContainerSpec(name="c", id="x", host="h")) is None
