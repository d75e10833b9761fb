"""`run --restart` (proto/run_options.py, agent/restart_policy.py): parsing and the rules (pure)."""
from __future__ import annotations

import pytest

from agent import restart_policy
from proto.errors import InvalidArgument
from proto.run_options import parse_restart, restarts


@pytest.mark.parametrize("text, parsed", [
    ("no", ("no", 0)), ("on-failure", ("on-failure", 0)), ("on-failure:3", ("on-failure", 3)),
    ("always", ("always", 0)), ("unless-stopped", ("unless-stopped", 0)),
])
def test_docker_spellings_parse(text, parsed):
    assert parse_restart(text) == parsed


@pytest.mark.parametrize("text, message", [
    ("sometimes", "use no, on-failure"), ("always:3", "only on-failure"), ("on-failure:x", "a number"),
])
def test_other_spellings_are_refused(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_restart(text)


def test_which_exits_restart():
    assert not restarts("no", 0, 1, 0)
    assert not restarts("on-failure", 0, 0, 0) and restarts("on-failure", 0, 1, 99)
    assert restarts("on-failure", 2, 1, 1) and not restarts("on-failure", 2, 1, 2)
    assert restarts("always", 0, 0, 50) and restarts("unless-stopped", 0, 0, 50)


def test_the_delay_doubles_and_a_long_run_resets_it():
    assert [restart_policy.delay(n) for n in range(4)] == [0.1, 0.2, 0.4, 0.8]
    assert restart_policy.delay(30) == restart_policy.MAX_DELAY
    # Exited after 1 s of running, at the third step: 0.8 s later.
    assert restart_policy.due("always", 0, 0, 3, 3, 100.0, 101.0) == pytest.approx(101.8)
    # After a run of 10 s or more the next restart is quick again.
    assert restart_policy.due("always", 0, 0, 3, 3, 100.0, 110.0) == pytest.approx(110.1)
    assert restart_policy.due("no", 0, 1, 0, 0, 100.0, 101.0) is None
