"""The agent's table diff: desired remote endpoints vs. what the kernel holds."""
from agent.table_diff import desired_entries, plan
from proto.records import Endpoint


def ep(name, host, ip, mac, vtep):
    return Endpoint(network="blue", container=name, host=host, vtep=vtep, ip=ip, mac=mac)


def test_local_endpoints_get_no_entries():
    fdb, neigh = desired_entries([ep("a", "h1", "10.0.0.2", "02:42:0A:00:00:02", "192.0.2.1"),
                                  ep("b", "h2", "10.0.0.3", "02:42:0a:00:00:03", "192.0.2.2")], "h1")
    assert fdb == {"02:42:0a:00:00:03": "192.0.2.2"}
    assert neigh == {"10.0.0.3": "02:42:0a:00:00:03"}


def test_plan_converges_and_removes_stale_entries():
    want_fdb = {"02:42:0a:00:00:03": "192.0.2.2", "02:42:0a:00:00:04": "192.0.2.3"}
    want_neigh = {"10.0.0.3": "02:42:0a:00:00:03", "10.0.0.4": "02:42:0a:00:00:04"}
    have_fdb = {"02:42:0a:00:00:03": "192.0.2.9",      # host moved: wrong VTEP
                "02:42:0a:00:00:04": "192.0.2.3",      # right
                "02:42:0a:00:00:05": "192.0.2.2"}      # container gone: stale
    have_neigh = {"10.0.0.3": "02:42:0a:00:00:03", "10.0.0.4": "02:42:0a:00:00:99", "10.0.0.5": "x"}
    todo = plan(want_fdb, want_neigh, have_fdb, have_neigh)
    assert todo.fdb_put == {"02:42:0a:00:00:03": "192.0.2.2"}
    assert todo.fdb_del == ["02:42:0a:00:00:05"]
    assert todo.neigh_put == {"10.0.0.4": "02:42:0a:00:00:04"}
    assert todo.neigh_del == ["10.0.0.5"]


def test_plan_is_empty_when_the_kernel_matches():
    fdb = {"02:42:0a:00:00:03": "192.0.2.2"}
    neigh = {"10.0.0.3": "02:42:0a:00:00:03"}
    assert not plan(fdb, neigh, dict(fdb), dict(neigh))
