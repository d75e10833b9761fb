"""A pass woken by a view update checks only what changed; the periodic pass
still checks everything, so drift heals without any change from the controller."""
from __future__ import annotations

import ipaddress
import json

import pytest

from agent import names
from agent.reconcile import RESYNC_SECONDS
from tests.helpers.images import BUSYBOX
from tests.helpers.lab_cli import inspect
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration


def _links(lab, netns: str) -> set[str]:
    shown = json.loads(lab.netns_exec(lab.fabric_ns, "ip", "-n", netns, "-j", "link", "show").stdout)
    return {link["ifname"] for link in shown}


def _ipv4_addresses(lab, netns: str, ifname: str) -> list[ipaddress.IPv4Interface]:
    shown = json.loads(lab.netns_exec(lab.fabric_ns, "ip", "-n", netns, "-j", "-4", "addr", "show", ifname).stdout)
    return [ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}") for link in shown for a in link["addr_info"]]


def test_a_deleted_interface_comes_back_with_the_periodic_pass(make_lab):
    lab = make_lab(hosts=1)
    host = lab.hosts[0]
    lab.cli("network", "create", "--subnet", "10.78.0.0/24", "green")
    lab.cli("run", "-d", "--name", "g1", "--host", host.name, "--network", "green", BUSYBOX, "sleep", "infinity")
    cid = inspect(lab, "g1")["id"]
    netns = names.container_netns(host.name, cid)
    assert "eth0" in _links(lab, netns)

    lab.netns_exec(lab.fabric_ns, "ip", "-n", netns, "link", "del", "eth0")
    # A view update wakes a pass, which may leave g1 alone (its network was
    # built by an earlier pass and nothing about it changed) ...
    lab.cli("run", "-d", "--name", "g2", "--host", host.name, "--network", "green", BUSYBOX, "sleep", "infinity")
    # ... but the periodic pass checks every container again.
    wait_for(lambda: "eth0" in _links(lab, netns), timeout=RESYNC_SECONDS + 15,
             what="the periodic pass to recreate g1's eth0")
    shown = _ipv4_addresses(lab, netns, "eth0")
    assert ipaddress.IPv4Network("10.78.0.0/24") in [a.network for a in shown], shown
