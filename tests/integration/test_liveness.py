"""Host liveness from the data plane (controller/liveness.py) on a 3-host lab:
a host whose agent is down keeps its containers reachable for the grace
period; a host whose underlay link is cut leaves every other host's kernel
within 10 s. Each with its control: the mechanism off, the failure shows."""
from __future__ import annotations

import time

import pytest

from tests.helpers.images import BUSYBOX
from tests.helpers.kernel_tables import desired_entries, kernel_entries
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import inspect, pings, run
from tests.helpers.polling import wait_for
from tests.helpers.tool_text import ping_counts

pytestmark = pytest.mark.integration

DEAD_HOST_BOUND = 10.0     # seconds from a host's underlay cut to its rows gone elsewhere
AGENT_DOWN_SECONDS = 60.0  # how long the agent stays stopped (the grace period is 120 s)
PING_INTERVAL = 0.1


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=3, image=busybox_archive) as lab:
        yield lab


def row_of(lab, detail: dict, host: int) -> tuple[str, str, str]:
    return detail["networks"]["blue"]["mac"], detail["networks"]["blue"]["ip"], lab.hosts[host].underlay_ip


def ping_through(lab, name: str, source_host: int, target_ip: str, seconds: float) -> None:
    """A pinger container on `source_host`: its traffic and its log need no agent."""
    count = int(seconds / PING_INTERVAL)
    lab.cli("run", "-d", "--name", name, "--host", lab.hosts[source_host].name, "--network", "blue", BUSYBOX,
            "ping", "-i", str(PING_INTERVAL), "-c", str(count), "-W", "1", target_ip)


def pinger_result(lab, name: str, seconds: float) -> tuple[int, int]:
    wait_for(lambda: inspect(lab, name)["state"] == "exited", seconds, f"{name} to end")
    return ping_counts(lab.cli("logs", name).stdout)


def agent_down_while_pinged(lab, prefix: str, down_for: float) -> tuple[int, int, list[str]]:
    """Stop h2's agent for `down_for` seconds while h1 pings a container on h2;
    (sent, received, the states `host ls` showed for h2 meanwhile)."""
    target = run(lab, f"{prefix}-target", 1)
    ping_through(lab, f"{prefix}-pinger", 0, target["networks"]["blue"]["ip"], down_for + 6)
    time.sleep(2.0)
    lab.stop_agent(lab.hosts[1])
    states = []
    stopped = time.monotonic()
    while time.monotonic() - stopped < down_for:
        states.append(lab.host_states()[lab.hosts[1].name])
        time.sleep(2.0)
    lab.start_agent(lab.hosts[1])
    sent, received = pinger_result(lab, f"{prefix}-pinger", down_for + 30)
    return sent, received, states


def test_an_agent_stopped_for_a_minute_cuts_no_traffic_and_shows_agent_down(lab):
    sent, received, states = agent_down_while_pinged(lab, "ad", AGENT_DOWN_SECONDS)
    print(f"agent down {AGENT_DOWN_SECONDS:.0f}s: {sent} pings sent, {sent - received} lost; "
          f"host ls said {sorted(set(states))}")
    assert sent == int((AGENT_DOWN_SECONDS + 6) / PING_INTERVAL) and received == sent
    # Once the lease ended (host-ttl), `host ls` said so, and never "down".
    assert "agent down" in states and "down" not in states
    assert lab.host_states()[lab.hosts[1].name] == "up"
    for host in range(3):
        assert kernel_entries(lab, host) == desired_entries(lab, host)


def test_control_without_the_grace_period_a_stopped_agent_cuts_its_containers_off(lab):
    lab.write_controller_config(1, {"agent-grace": 0})
    lab.stop_controller()
    lab.start_controller()
    try:
        lab.wait_hosts_up()
        sent, received, states = agent_down_while_pinged(lab, "ac", 15.0)
        print(f"control, no grace: {sent} pings sent, {sent - received} lost; host ls said {sorted(set(states))}")
        assert "down" in states and sent - received >= 20
    finally:
        lab.write_controller_config(1, {})
        lab.stop_controller()
        lab.start_controller()
        lab.wait_hosts_up()


def cut_and_measure(lab, prefix: str, bound: float) -> float | None:
    """Cut h2 from the fabric; seconds until its row left h1's and h3's kernels
    (None: still there after `bound`). The link is back when this returns."""
    # h1 and h3 hold blue's table while a container of theirs is on it.
    run(lab, f"{prefix}-on-h1", 0)
    run(lab, f"{prefix}-on-h3", 2)
    row = row_of(lab, run(lab, f"{prefix}-on-h2", 1), 1)
    wait_for(lambda: row in kernel_entries(lab, 0) and row in kernel_entries(lab, 2), 15,
             "h2's row in h1's and h3's kernels")
    cut = time.monotonic()
    lab.cut_underlay(lab.hosts[1])
    try:
        gone_after = None
        while time.monotonic() - cut < bound:
            if row not in kernel_entries(lab, 0) and row not in kernel_entries(lab, 2):
                gone_after = time.monotonic() - cut
                break
            time.sleep(0.2)
        return gone_after
    finally:
        lab.restore_underlay(lab.hosts[1])
        lab.wait_hosts_up(timeout=60)
        wait_for(lambda: row in kernel_entries(lab, 0), 30, "h2's row back in h1's kernel")


def test_a_host_cut_from_the_underlay_leaves_the_other_kernels_within_10s(lab):
    gone_after = cut_and_measure(lab, "cut", DEAD_HOST_BOUND)
    print(f"h2 cut from the underlay: its endpoint left h1's and h3's kernels after "
          f"{gone_after if gone_after is None else f'{gone_after:.1f}s'} (bound {DEAD_HOST_BOUND:.0f}s)")
    assert gone_after is not None and gone_after <= DEAD_HOST_BOUND
    # Back on the fabric, back in the tables.
    assert pings(lab, "cut-on-h1", inspect(lab, "cut-on-h2")["networks"]["blue"]["ip"])
    for host in range(3):
        assert kernel_entries(lab, host) == desired_entries(lab, host)


def test_control_without_probes_a_cut_host_stays_in_the_tables(lab):
    for host in (0, 2):
        lab.restart_agent_with(lab.hosts[host], {"vtep-probes": "off"})
    try:
        gone_after = cut_and_measure(lab, "nop", DEAD_HOST_BOUND + 2)
        print(f"control, no probes: h2's endpoint gone after {gone_after}")
        assert gone_after is None
    finally:
        for host in (0, 2):
            lab.restart_agent_with(lab.hosts[host], {})
