"""A few seconds of tests/soak.py, so `make test` keeps the soak itself working
(`make soak` runs it for minutes)."""
from __future__ import annotations

import os

import pytest

from tests import soak

pytestmark = pytest.mark.integration


def test_a_short_soak_holds():
    if os.geteuid() != 0:
        pytest.skip("the soak builds a namespace lab and needs root")
    tally = soak.soak(seconds=6, hosts=2, seed=4)
    assert tally.problems == []
    assert tally.actions["run"] > 0
    # Each fault happened once: a burst through a killed controller, an agent
    # held down within the grace period, a host cut from the underlay.
    assert all(tally.actions[fault] == 1 for fault in soak.FAULTS), tally.actions
