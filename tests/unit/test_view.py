"""The controller's view filter: snapshots, deltas and resumes for one agent."""
from controller.etcd import KV, Event
from controller.index import Index
from controller.keys import Keys
from controller.view import AgentView
from proto.records import Attachment, ContainerSpec, ControllerInfo, Endpoint, Host, HostAlive, Network

keys = Keys("/vxmesh/")
_rev = [0]


def _kv(key, record):
    _rev[0] += 1
    return KV(key=key, value=record.to_json(), create_revision=_rev[0], mod_revision=_rev[0], version=1)


def put(key, record, prev=None):
    return Event(kind="put", kv=_kv(key, record), prev=_kv(key, prev) if prev else None)


def delete(key, prev):
    return Event(kind="delete", kv=KV(key=key, value=b"", create_revision=0, mod_revision=0, version=0),
                 prev=_kv(key, prev))


def alive(host):
    return Event(kind="put", kv=KV(key=keys.alive(host), value=b"{}", create_revision=1, mod_revision=1,
                                   version=1), prev=None)


def dead(host):
    return Event(kind="delete", kv=KV(key=keys.alive(host), value=b"", create_revision=0, mod_revision=0,
                                      version=0), prev=None)


def net(name, vni):
    return Network(name=name, subnet="10.1.0.0/24", gateway="10.1.0.1", vni=vni)


def container(name, host, *networks):
    return ContainerSpec(id=name * 4, name=name, host=host, command=["sleep", "1"],
                         attachments=[Attachment(n, f"10.1.0.{len(name)}", "02:42:0a:01:00:02") for n in networks])


def endpoint(network, name, host, ip):
    return Endpoint(network=network, container=name, host=host, vtep=f"192.0.2.{host[-1]}", ip=ip,
                    mac="02:42:0a:01:00:" + ip.split(".")[-1].zfill(2))


def state(*events_):
    index = Index(keys)
    for ev in events_:
        index.apply([ev])
    return index


def as_dict(changes):
    return {c.key: c.record for c in changes}


BLUE, RED = net("blue", 4096), net("red", 4097)


def base_index():
    return state(
        put(keys.network("blue"), BLUE), put(keys.network("red"), RED),
        put(keys.host("h1"), Host(name="h1", vtep="192.0.2.1")),
        put(keys.host("h2"), Host(name="h2", vtep="192.0.2.2")),
        alive("h1"), alive("h2"),
        put(keys.container("a"), container("a", "h2", "blue")),
        put(keys.endpoint("blue", "a"), endpoint("blue", "a", "h2", "10.1.0.2")),
        put(keys.container("r"), container("r", "h2", "red")),
        put(keys.endpoint("red", "r"), endpoint("red", "r", "h2", "10.1.0.9")),
    )


def test_snapshot_holds_only_networks_with_a_local_container():
    index = base_index()
    index.apply([put(keys.container("b"), container("b", "h1", "blue")),
                 put(keys.endpoint("blue", "b"), endpoint("blue", "b", "h1", "10.1.0.3"))])
    snap = as_dict(AgentView("h1", index).snapshot())
    assert keys.endpoint("blue", "a") in snap and keys.endpoint("blue", "b") in snap
    assert keys.network("blue") in snap
    assert keys.network("red") not in snap and keys.endpoint("red", "r") not in snap
    assert keys.container("b") in snap and keys.container("a") not in snap  # only its own containers
    assert keys.host("h1") in snap and keys.host("h2") in snap


def test_host_without_containers_gets_no_table():
    snap = as_dict(AgentView("h1", base_index()).snapshot())
    assert not any("/endpoints/" in k for k in snap)


def test_first_container_pulls_in_the_whole_network_table():
    index = base_index()
    view = AgentView("h1", index)
    view.snapshot()
    events = [put(keys.container("b"), container("b", "h1", "blue")),
              put(keys.endpoint("blue", "b"), endpoint("blue", "b", "h1", "10.1.0.3"))]
    changes = as_dict(view.changes(index.apply(events)))
    assert changes[keys.endpoint("blue", "a")].ip == "10.1.0.2"  # existing remote row pushed
    assert changes[keys.endpoint("blue", "b")].ip == "10.1.0.3"
    assert changes[keys.network("blue")] == BLUE
    assert keys.endpoint("red", "r") not in changes


def test_deltas_for_other_networks_are_filtered_out():
    index = base_index()
    index.apply([put(keys.container("b"), container("b", "h1", "blue"))])
    view = AgentView("h1", index)
    view.snapshot()
    red_ep = endpoint("red", "s", "h2", "10.1.0.20")
    assert view.changes(index.apply([put(keys.endpoint("red", "s"), red_ep)])) == []
    blue_ep = endpoint("blue", "c", "h2", "10.1.0.21")
    changes = view.changes(index.apply([put(keys.endpoint("blue", "c"), blue_ep)]))
    assert as_dict(changes) == {keys.endpoint("blue", "c"): blue_ep}
    changes = view.changes(index.apply([delete(keys.endpoint("blue", "c"), blue_ep)]))
    assert as_dict(changes) == {keys.endpoint("blue", "c"): None}


def test_last_container_leaving_withdraws_the_table():
    index = base_index()
    b = container("b", "h1", "blue")
    index.apply([put(keys.container("b"), b)])
    view = AgentView("h1", index)
    view.snapshot()
    changes = as_dict(view.changes(index.apply([delete(keys.container("b"), b)])))
    assert changes[keys.container("b")] is None
    assert changes[keys.network("blue")] is None
    assert changes[keys.endpoint("blue", "a")] is None
    assert view.networks == set()


def test_resume_replays_missed_changes_to_the_same_view():
    """Applying the resumed delta to the old snapshot gives exactly a fresh snapshot."""
    index = base_index()
    index.apply([put(keys.container("b"), container("b", "h1", "blue"))])
    old_view = AgentView("h1", index)
    agent = as_dict(old_view.snapshot())
    held = set(old_view.networks)

    gone = endpoint("blue", "a", "h2", "10.1.0.2")
    missed = [
        [delete(keys.endpoint("blue", "a"), gone)],
        [put(keys.endpoint("blue", "d"), endpoint("blue", "d", "h2", "10.1.0.30"))],
        [put(keys.container("q"), container("q", "h1", "red"))],          # h1 joins red
        [put(keys.endpoint("red", "t"), endpoint("red", "t", "h2", "10.1.0.31"))],
        [put(keys.endpoint("blue", "d"), endpoint("blue", "d", "h2", "10.1.0.32"))],  # IP changed
    ]
    decoded = [index.apply(batch) for batch in missed]
    resumed = AgentView("h1", index, held)
    delta = [c for batch in decoded for c in resumed.changes(batch)] + resumed.sync_membership()
    for change in delta:
        if change.record is None:
            agent.pop(change.key, None)
        else:
            agent[change.key] = change.record
    assert agent == as_dict(AgentView("h1", index).snapshot())
    assert agent[keys.endpoint("blue", "d")].ip == "10.1.0.32"
    assert keys.endpoint("red", "r") in agent and keys.endpoint("blue", "a") not in agent


def test_a_dead_hosts_endpoints_are_withdrawn_and_restored():
    index = base_index()
    index.apply([put(keys.container("b"), container("b", "h1", "blue"))])
    view = AgentView("h1", index)
    assert keys.endpoint("blue", "a") in as_dict(view.snapshot())
    # h2's lease expires: h1 drops a's entry; etcd still holds it (the address stays reserved).
    assert as_dict(view.changes(index.apply([dead("h2")]))) == {keys.endpoint("blue", "a"): None,
                                                               keys.alive("h2"): None}
    assert keys.endpoint("blue", "a") not in as_dict(AgentView("h1", index).snapshot())
    # While h2 is down its endpoint changes stay hidden.
    late = endpoint("blue", "e", "h2", "10.1.0.40")
    assert as_dict(view.changes(index.apply([put(keys.endpoint("blue", "e"), late)]))) == {
        keys.endpoint("blue", "e"): None}
    # h2 is back: everything of it in h1's networks reappears.
    back = as_dict(view.changes(index.apply([alive("h2")])))
    assert back == {keys.endpoint("blue", "a"): index.endpoints_of("blue")[keys.endpoint("blue", "a")],
                    keys.endpoint("blue", "e"): late, keys.alive("h2"): HostAlive("h2")}
    # The host's own liveness event does not touch its own view.
    assert view.changes(index.apply([dead("h1")])) == []


def _agent_view(changes, view=None, snapshot=True):
    """What an agent holds after receiving `changes` over the wire."""
    from agent.view import View
    from proto import vxmesh_pb2 as pb
    view = view or View("h1")
    view.apply(pb.ViewUpdate(revision=_rev[0] or 1, snapshot=snapshot,
                             changes=[c.to_wire() for c in changes]))
    return view


def test_agents_learn_the_live_hosts_vteps_from_snapshot_deltas_and_resume():
    index = base_index()
    index.apply([put(keys.host("h3"), Host(name="h3", vtep="192.0.2.3"))])  # registered, not alive
    controller_side = AgentView("h1", index)
    agent = _agent_view(controller_side.snapshot())
    # Only other hosts whose lease lives; h1 itself and the dead h3 are not listed.
    assert agent.live_vteps() == {"192.0.2.2"}
    agent = _agent_view(controller_side.changes(index.apply([alive("h3")])), agent, snapshot=False)
    assert agent.live_vteps() == {"192.0.2.2", "192.0.2.3"}
    agent = _agent_view(controller_side.changes(index.apply([dead("h2")])), agent, snapshot=False)
    assert agent.live_vteps() == {"192.0.2.3"}
    # A resume replays missed liveness changes through a fresh filter and lands
    # where a snapshot would.
    held = set(controller_side.networks)
    missed = [index.apply([alive("h2")]), index.apply([dead("h3")])]
    resumed = AgentView("h1", index, held)
    delta = [c for batch in missed for c in resumed.changes(batch)] + resumed.sync_membership()
    agent = _agent_view(delta, agent, snapshot=False)
    assert agent.live_vteps() == {"192.0.2.2"}
    assert agent.live_vteps() == _agent_view(AgentView("h1", index).snapshot()).live_vteps()


def test_every_agent_learns_the_controllers_serving_now():
    index = base_index()
    ctl = ControllerInfo(name="ctl-1", listen=["192.0.2.100:7946"], etcd_client=["192.0.2.5:2379"],
                         etcd_peer=["192.0.2.5:2380"])
    index.apply([put(keys.controller("ctl-1"), ctl)])
    view = AgentView("h1", index)   # a host without containers sees them too
    agent = _agent_view(view.snapshot())
    assert agent.controllers() == [ctl]
    # A second controller starts, the first one's lease ends: every stream is told.
    ctl2 = ControllerInfo(name="ctl-2", listen=["192.0.2.101:7946"])
    agent = _agent_view(view.changes(index.apply([put(keys.controller("ctl-2"), ctl2)])), agent, snapshot=False)
    agent = _agent_view(view.changes(index.apply([delete(keys.controller("ctl-1"), ctl)])), agent,
                        snapshot=False)
    assert agent.controllers() == [ctl2]
    assert _agent_view(AgentView("h2", index).snapshot()).controllers() == [ctl2]
