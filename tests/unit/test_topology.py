"""The naming rules of deploy/topology.py, without building anything."""
from __future__ import annotations

import pytest

from deploy.topology import Node, Topology, is_tag


@pytest.mark.parametrize("tag", ["", "x", "vxm", "Vxt1", "vx-t", "1abc", "a" * 17])
def test_a_tag_that_could_name_another_tags_or_agents_namespaces_is_refused(tag):
    assert not is_tag(tag)
    with pytest.raises(ValueError, match="tag"):
        Topology(tag)


def test_nodes_and_what_agents_make_for_them_carry_the_tag_and_nothing_else_does():
    topology = Topology("vxt1a2b")
    assert topology.name("h1") == "vxt1a2b-h1"
    for mine in ("vxt1a2b-h1", "vxt1a2b-fabric", "vxt1a2b-made-inside", "vxm-vxt1a2b-h1-ov4200",
                 "vxm-vxt1a2b-h2-c0123456789ab"):
        assert topology.carries_tag(mine), mine
    # Another tag that merely starts like this one, its agents, and other labs' agents.
    for theirs in ("vxt1a2bx-h1", "vxm-vxt1a2bx-h1-c1", "vxm-h1-ov4200", "vxt1a2b", "x-vxt1a2b-h1"):
        assert not topology.carries_tag(theirs), theirs


def test_adopt_claims_namespaces_of_other_names():
    topology = Topology("vxlab", adopt=lambda netns: netns.startswith("vxm-h1-"))
    assert topology.carries_tag("vxm-h1-ov4096") and not topology.carries_tag("vxm-h10x")


def test_a_command_on_a_node_enters_its_network_namespace_only():
    assert Node("vxt1a2b-h1").argv("ping", "-c1", "10.0.0.1") == [
        "nsenter", "--net=/run/netns/vxt1a2b-h1", "ping", "-c1", "10.0.0.1"]
