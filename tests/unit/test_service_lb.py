"""The load-balancer table of a container (agent/kernel/service_lb.py), as nft JSON (pure)."""
from __future__ import annotations

from agent.kernel.service_lb import TABLE, Balanced, ruleset


def rules(objects: list[dict]) -> list[dict]:
    return [o["add"]["rule"] for o in objects if "rule" in o.get("add", {})]


def test_each_vip_is_dnatted_to_one_backend_picked_per_connection():
    objects = ruleset([Balanced("10.77.0.9", ("10.77.0.3", "10.77.0.4"), "web")])
    # The table is replaced whole: add (so the delete is valid), delete, add.
    assert [next(iter(o)) for o in objects[:3]] == ["add", "delete", "add"]
    [rule] = rules(objects)
    assert rule["chain"] == "vips" and rule["comment"] == "web"
    match, dnat = rule["expr"]
    assert match["match"]["right"] == "10.77.0.9"
    choice = dnat["dnat"]["addr"]["map"]
    assert choice["key"] == {"numgen": {"mode": "random", "mod": 2, "offset": 0}}
    assert choice["data"]["set"] == [[0, "10.77.0.3"], [1, "10.77.0.4"]]
    assert "port" not in dnat["dnat"]              # every port of the VIP, unchanged, as Docker's


def test_a_vip_without_backends_is_refused_not_left_to_time_out():
    [rule] = rules(ruleset([Balanced("10.77.0.9", ()), ]))
    assert rule["chain"] == "empty" and rule["table"] == TABLE
    assert rule["expr"][0]["match"]["right"] == {"set": ["10.77.0.9"]}
    assert rule["expr"][1] == {"reject": {"type": "icmp", "expr": "port-unreachable"}}
