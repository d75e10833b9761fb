"""Hosts: registration and liveness.

A host's record says where it is (VTEP, API address, underlay MTU). Whether
its agent is connected is its agents/<name> key, bound to the lease of the
controller holding its stream (controller/agent_leases.py), which deletes it
when the agent's heartbeats stop, and which goes with the controller's lease
when the controller does; what the agent's probes of its peers found is its
reach/<name> key, under the same lease and deleted with it. Whether the host is in every table
is its alive/<name> key, which `settle` writes by the liveness rule
(controller/liveness.py) from those two, in one guarded transaction.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter

from controller.etcd import Compare, EtcdError, Op, Txn
from controller import liveness
from controller.host_view import host_view
from controller.store.records import Records, json_value
from controller.store.transaction import Commit, Settled, retrying, surface_unavailable
from proto import validate
from proto.addresses import UNDERLAY_FAMILIES, parse_ip
from proto.errors import Unavailable
from proto.records import ContainerSpec, Endpoint, Host, HostAlive, Reachability, ResyncRequest


# Hosts marked connected in one transaction at most: two operations each
# (its agents/ key and its reach/ report), within etcd's default of 128.
MARKS_PER_TXN = 50


class Hosts:
    def __init__(self, records: Records, controller_id: str) -> None:
        self.records = records
        self.keys = records.keys
        self.etcd = records.etcd
        self.controller_id = controller_id

    @surface_unavailable
    async def register(self, host: Host) -> None:
        """Record the host; `state` and `containers` are computed on read, not stored.
        `registered_at` is when the record last changed (a host that comes back
        unchanged is not written again).

        A host that comes back with a new VTEP address gets all its endpoints
        re-pointed in the same transaction, so no host's table ever mixes the two.
        """
        validate.host_name(host.name)
        parse_ip(host.vtep, "VTEP address", UNDERLAY_FAMILIES)
        key = self.keys.host(host.name)
        record = dataclasses.replace(host, state="", containers=0, registered_at=time.time())

        async def attempt(_: int) -> Commit[None] | Settled[None]:
            found = await self.records.record(key, Host)
            if found is not None and dataclasses.replace(found[1], registered_at=record.registered_at) == record:
                # An agent reconnecting with nothing changed: every agent gets
                # every host record, so rewriting it (for a new time alone)
                # would be a message to each, per reconnection.
                return Settled(None)
            unchanged = Compare.absent(key) if found is None else Compare.mod_revision(key, "=", found[0].mod_revision)
            txn = Txn([unchanged], [Op.put(key, record.to_json())])
            if found is not None and found[1].vtep != host.vtep:
                endpoints, revision = await self.records.records(self.keys.endpoints_all(), Endpoint)
                txn.compares.append(Compare.prefix_unchanged_since(self.keys.endpoints_all(), revision))
                txn.ops += [Op.put(kv.key, dataclasses.replace(e, vtep=host.vtep).to_json())
                            for kv, e in endpoints if e.host == host.name]
            return Commit(txn, None)

        await retrying(self.etcd, attempt, what=f"register host {host.name!r}", changing="its record")

    @surface_unavailable
    async def get(self, name: str) -> Host:
        return (await self._shown([(await self.records.host(name))[1]]))[0]

    @surface_unavailable
    async def list_all(self) -> list[Host]:
        records, _ = await self.records.records(self.keys.hosts(), Host)
        return await self._shown([host for _, host in records])

    async def _shown(self, hosts: list[Host]) -> list[Host]:
        alive_records, _ = await self.records.records(self.keys.alive_all(), HostAlive)
        alive = {record.host: record for _, record in alive_records}
        connected = await self._connected()
        specs, _ = await self.records.records(self.keys.containers(), ContainerSpec)
        counts = Counter(spec.host for _, spec in specs)
        return [host_view(h, alive, connected, counts[h.name]) for h in hosts]

    async def _connected(self) -> set[str]:
        kvs, _ = await self.etcd.get_prefix(self.keys.agents_all(), keys_only=True)
        return {self.keys.parse(kv.key)[1][0] for kv in kvs}

    @surface_unavailable
    async def mark_alive(self, host: str, ttl: int) -> int:
        """Bind agents/<host> to a fresh lease of its own: the key vanishes by
        itself if nobody renews it. Returns the lease id. (A controller binds
        all its agents' keys to one lease instead: `mark_connected`.)"""
        validate.host_name(host)
        lease = await self.etcd.grant(ttl)
        try:
            await self.mark_connected(host, lease)
        except BaseException:
            # Best effort: a lease we cannot revoke expires after `ttl` anyway.
            with contextlib.suppress(EtcdError, Unavailable):
                await self.etcd.revoke(lease)
            raise
        return lease

    @surface_unavailable
    async def grant_lease(self, ttl: int) -> int:
        """A lease of `ttl` seconds for agents' keys (controller/agent_leases.py)."""
        return await self.etcd.grant(ttl)

    @surface_unavailable
    async def mark_connected(self, host: str, lease: int) -> int:
        """Write agents/<host> (its agent is connected to this controller) bound
        to `lease`; returns the key's mod revision, which `mark_gone` guards on.
        Whether the host is then in the tables is for `settle` to say."""
        validate.host_name(host)
        return await self.etcd.put(self.keys.agent(host), self._agent_value(host, time.time()), lease=lease)

    @surface_unavailable
    async def mark_connected_many(self, marks: list[tuple[str, Reachability | None]], lease: int) -> int:
        """`mark_connected` for several hosts at once, each with its last reach
        report, in one transaction (at most MARKS_PER_TXN of them: etcd bounds
        a transaction's operations); returns the keys' mod revision."""
        if len(marks) > MARKS_PER_TXN:
            raise ValueError(f"at most {MARKS_PER_TXN} hosts per transaction, not {len(marks)}")
        since = time.time()
        ops = []
        for host, reach in marks:
            validate.host_name(host)
            ops.append(Op.put(self.keys.agent(host), self._agent_value(host, since), lease=lease))
            if reach is not None:
                ops.append(Op.put(self.keys.reach(host), reach.to_json(), lease=lease))
        return (await self.etcd.txn([], ops)).revision

    def _agent_value(self, host: str, since: float) -> bytes:
        """The value of agents/<host>: which controller holds its agent's stream, since when."""
        return json_value({"host": host, "controller": self.controller_id, "since": since})

    @surface_unavailable
    async def mark_gone(self, host: str, revision: int) -> bool:
        """Delete agents/<host> and the host's reach/ report, if the key is still
        the one written at `revision`: an agent that connected again since (here
        or to another controller) has a newer one, which stays. Whether it was deleted."""
        validate.host_name(host)
        result = await self.etcd.txn([Compare.mod_revision(self.keys.agent(host), "=", revision)],
                                     [Op.delete(self.keys.agent(host)), Op.delete(self.keys.reach(host))])
        return result.succeeded

    @surface_unavailable
    async def keep_alive(self, lease_id: int) -> bool:
        """Renew; False once the lease is gone (the host was declared down)."""
        return await self.etcd.keepalive(lease_id) > 0

    @surface_unavailable
    async def mark_down(self, lease_id: int) -> None:
        await self.etcd.revoke(lease_id)

    @surface_unavailable
    async def ask_resync(self, host: str) -> None:
        """Ask the agent of `host`, through whichever controller holds its stream,
        to report every container's status again."""
        validate.host_name(host)
        await self.etcd.put(self.keys.resync(host), ResyncRequest(host, time.time()).to_json())

    @surface_unavailable
    async def put_reach(self, report: Reachability, lease: int) -> None:
        """Record what a host's probes found, under its agent's lease: the
        report goes when the agent does, and then no longer counts."""
        await self.etcd.put(self.keys.reach(report.reporter), report.to_json(), lease=lease)

    @surface_unavailable
    async def settle(self, host: str, grace: float) -> HostAlive | None:
        """Apply the liveness rule to `host` from what etcd holds now, and write
        the decision guarded on the host's own keys, so controllers deciding at
        once agree: the loser reads again and finds it done. Returns the alive/ record."""
        validate.host_name(host)
        alive_key = self.keys.alive(host)

        async def attempt(_: int) -> Commit[HostAlive | None] | Settled[HostAlive | None]:
            reports, _ = await self.records.records(self.keys.reach_all(), Reachability)
            agents, _ = await self.etcd.get_prefix(self.keys.agents_all(), keys_only=True)
            connected = {self.keys.parse(kv.key)[1][0] for kv in agents}
            found = await self.records.record(alive_key, HostAlive)
            current = found[1] if found is not None else None
            evidence = liveness.evidence(host, connected, current,
                                         {report.reporter: report for _, report in reports})
            decided = liveness.judge(host, evidence, time.time(), grace)
            if decided is current:
                return Settled(current)
            # Guarded on the host's own keys: decisions on one host are serialized
            # through its alive/ record, so two controllers never both write one.
            # Not on every peer's keys: with many agents connecting at once, any
            # one of them would make every other host's decision lose its race;
            # a peer's newer report is the next pass's to act on.
            guards = [Compare.exists(self.keys.agent(host)) if evidence.connected
                      else Compare.absent(self.keys.agent(host)),
                      Compare.absent(alive_key) if found is None
                      else Compare.mod_revision(alive_key, "=", found[0].mod_revision)]
            op = Op.delete(alive_key) if decided is None else Op.put(alive_key, decided.to_json())
            return Commit(Txn(guards, [op]), decided)

        return await retrying(self.etcd, attempt, what=f"settle the liveness of host {host!r}",
                              changing="its liveness")
