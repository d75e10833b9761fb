"""`service update`'s list edits (controller/services/api.py): Docker's order, and clear refusals."""
from __future__ import annotations

import pytest

from controller.services.api import edited, edited_ports
from proto.errors import InvalidArgument
from proto.records import PortMapping


def test_removals_go_before_additions_and_the_order_is_kept():
    assert edited("network", ["a", "b", "c"], ["b"], ["d"]) == ["a", "c", "d"]
    assert edited("network", ["a", "b"], ["a", "b"], ["b", "a"]) == ["b", "a"]     # re-ordered by rm + add


@pytest.mark.parametrize("removed, added, message", [
    (["x"], [], "--network-rm x: the service has no such network"),
    ([], ["a"], "--network-add a: the service has it already"),
])
def test_a_wrong_edit_is_refused_naming_it(removed, added, message):
    with pytest.raises(InvalidArgument, match=message):
        edited("network", ["a"], removed, added)


def test_ports_are_removed_by_published_port_and_protocol():
    current = [PortMapping("tcp", 8080, 80), PortMapping("udp", 8080, 53)]
    added = [PortMapping("tcp", 9090, 90).to_wire()]
    assert edited_ports(current, [PortMapping("tcp", 8080, 0).to_wire()], added) == [
        PortMapping("udp", 8080, 53), PortMapping("tcp", 9090, 90)]
    with pytest.raises(InvalidArgument, match="--publish-rm 7000/tcp: the service does not publish it"):
        edited_ports(current, [PortMapping("tcp", 7000, 0).to_wire()], [])
