"""The one module that talks to etcd: a small async client over grpc.aio.

It speaks etcd's v3 gRPC API through the stubs generated in the etcd3-fc
package, and nothing else in vxmesh imports those stubs, so the client can be
swapped without touching the store. Keys are str, values bytes.

Failure model: every unary call carries a deadline. A call answered with
UNAVAILABLE fails over to the next endpoint and is retried there, once per
endpoint; when every endpoint refuses, or one does not answer in time,
`EtcdUnavailable` is raised and the next call starts on the next endpoint.
Reads (ranges) that get no answer in time are retried on the next endpoint
too; writes are not, since they may have been applied. Each endpoint keeps
its own channel for the client's lifetime: failing over only changes where
new calls go, so a watch streaming from a healthy member is not cut because
a call was refused there. A member that lets a call go unanswered is given
up on, watches included: they end with `EtcdUnavailable`, to be resumed
elsewhere, rather than wait on a member that may have stopped answering.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from etcd3.etcdrpc import kv_pb2, rpc_pb2, rpc_pb2_grpc

log = logging.getLogger(__name__)


class EtcdError(Exception):
    pass


class EtcdUnavailable(EtcdError):
    pass


class Compacted(EtcdError):
    """The requested revision is older than etcd's compaction point."""

    def __init__(self, message: str, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


@dataclass(frozen=True)
class KV:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True)
class Member:
    """A member of the etcd cluster, as it advertises itself."""
    name: str
    client_urls: tuple[str, ...]
    peer_urls: tuple[str, ...]


@dataclass(frozen=True)
class Event:
    kind: str  # "put" | "delete"
    kv: KV
    prev: KV | None


_COMPARE_OPS = {
    "=": rpc_pb2.Compare.EQUAL,
    "!=": rpc_pb2.Compare.NOT_EQUAL,
    "<": rpc_pb2.Compare.LESS,
    ">": rpc_pb2.Compare.GREATER,
}


@dataclass(frozen=True)
class Compare:
    """One transaction guard. With `prefix` set it holds for every key under
    `key`, and an empty range compares as a key that never existed."""

    key: str
    target: str  # "version" | "mod"
    op: str
    value: int
    prefix: bool = False

    def __post_init__(self) -> None:
        if self.op not in _COMPARE_OPS:
            raise ValueError(f"unknown compare operator {self.op!r}; use one of {sorted(_COMPARE_OPS)}")
        if self.target not in ("version", "mod"):
            raise ValueError(f"unknown compare target {self.target!r}; use 'version' or 'mod'")

    @classmethod
    def absent(cls, key: str) -> Compare:
        return cls(key, "version", "=", 0)

    @classmethod
    def exists(cls, key: str) -> Compare:
        return cls(key, "version", ">", 0)

    @classmethod
    def mod_revision(cls, key: str, op: str, revision: int) -> Compare:
        return cls(key, "mod", op, revision)

    @classmethod
    def prefix_empty(cls, prefix: str) -> Compare:
        return cls(prefix, "version", "=", 0, prefix=True)

    @classmethod
    def prefix_unchanged_since(cls, prefix: str, revision: int) -> Compare:
        """No key under `prefix` was created or modified after `revision`.
        Deletions do not show up in a range compare, so this cannot see them."""
        return cls(prefix, "mod", "<", revision + 1, prefix=True)


@dataclass(frozen=True)
class Op:
    kind: str  # "put" | "delete" | "delete_prefix"
    key: str
    value: bytes = b""
    lease: int = 0

    @classmethod
    def put(cls, key: str, value: bytes, lease: int = 0) -> Op:
        return cls("put", key, value, lease)

    @classmethod
    def delete(cls, key: str) -> Op:
        return cls("delete", key)

    @classmethod
    def delete_prefix(cls, prefix: str) -> Op:
        return cls("delete_prefix", prefix)


@dataclass
class Txn:
    """The guards and writes of one transaction, gathered from every part that adds to it
    (a container's spec, an address per network, its published ports)."""
    compares: list[Compare] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)

    def add(self, other: Txn) -> None:
        self.compares += other.compares
        self.ops += other.ops


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int


def prefix_range_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\0"  # etcd's "to the end of the keyspace"
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _compare_to_proto(c: Compare) -> rpc_pb2.Compare:
    msg = rpc_pb2.Compare(result=_COMPARE_OPS[c.op], key=c.key.encode())
    if c.target == "version":
        msg.target = rpc_pb2.Compare.VERSION
        msg.version = c.value
    else:
        msg.target = rpc_pb2.Compare.MOD
        msg.mod_revision = c.value
    if c.prefix:
        msg.range_end = prefix_range_end(c.key.encode())
    return msg


def _op_to_proto(op: Op) -> rpc_pb2.RequestOp:
    key = op.key.encode()
    if op.kind == "put":
        return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=op.value, lease=op.lease))
    if op.kind == "delete":
        return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=key))
    if op.kind == "delete_prefix":
        return rpc_pb2.RequestOp(
            request_delete_range=rpc_pb2.DeleteRangeRequest(key=key, range_end=prefix_range_end(key))
        )
    raise ValueError(f"unknown transaction operation {op.kind!r}")


def _kv(msg: kv_pb2.KeyValue) -> KV:
    return KV(
        key=msg.key.decode(),
        value=msg.value,
        create_revision=msg.create_revision,
        mod_revision=msg.mod_revision,
        version=msg.version,
        lease=msg.lease,
    )


def _event(msg: kv_pb2.Event) -> Event:
    kind = "delete" if msg.type == kv_pb2.Event.DELETE else "put"
    prev = _kv(msg.prev_kv) if msg.HasField("prev_kv") else None
    return Event(kind=kind, kv=_kv(msg.kv), prev=prev)


def _group_by_revision(events: Sequence[kv_pb2.Event]) -> list[tuple[int, list[Event]]]:
    groups: list[tuple[int, list[Event]]] = []
    for msg in events:
        event = _event(msg)
        if groups and groups[-1][0] == event.kv.mod_revision:
            groups[-1][1].append(event)
        else:
            groups.append((event.kv.mod_revision, [event]))
    return groups


def _parse_endpoint(endpoint: str) -> tuple[str, bool]:
    """'http://h:p', 'https://h:p' or 'h:p' -> (grpc target 'h:p', uses TLS)."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        scheme, rest = "", endpoint
    rest = rest.rstrip("/")
    host, _, port = rest.rpartition(":")
    if scheme not in ("", "http", "https") or not host or not port.isdigit():
        raise ValueError(
            f"invalid etcd endpoint {endpoint!r}: expected host:port, http://host:port or https://host:port"
        )
    return rest, scheme == "https"


async def _load_credentials(
    ca: str | Path | None, cert: str | Path | None, key: str | Path | None, tls: bool
) -> grpc.ChannelCredentials | None:
    if (cert is None) != (key is None):
        raise ValueError("etcd TLS needs both a client certificate and its key, or neither")
    if not (tls or ca or cert):
        return None

    async def read(path: str | Path | None) -> bytes | None:
        return None if path is None else await asyncio.to_thread(Path(path).read_bytes)

    return grpc.ssl_channel_credentials(
        root_certificates=await read(ca),
        private_key=await read(key),
        certificate_chain=await read(cert),
    )


def _describe(exc: grpc.aio.AioRpcError) -> str:
    return exc.details() or exc.code().name


def _no_answer_in_time(exc: grpc.aio.AioRpcError) -> bool:
    # A member that cannot reach a quorum lets the request's deadline pass
    # on its side and etcd 3.4 reports that as UNKNOWN "context deadline
    # exceeded": the same "no answer in time" as our own deadline passing.
    code = exc.code()
    return code == grpc.StatusCode.DEADLINE_EXCEEDED or (
        code == grpc.StatusCode.UNKNOWN and "deadline exceeded" in (exc.details() or ""))


# Reconnect quickly after an etcd restart; ping idle streams so a dead peer
# ends a watch instead of leaving it silent forever.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


@dataclass
class _Connection:
    endpoint: str
    channel: grpc.aio.Channel
    kv: rpc_pb2_grpc.KVStub
    watch: rpc_pb2_grpc.WatchStub
    lease: rpc_pb2_grpc.LeaseStub
    cluster: rpc_pb2_grpc.ClusterStub


class _RenewalStreamBroken(Exception):
    """The shared keepalive stream ended, failed or did not answer in time."""


class _Renewals:
    """One LeaseKeepAlive stream for every renewal: each request is written on
    it and its reply (etcd answers each request, with the lease's ID) resolves
    the oldest renewal of that lease waiting. Any trouble closes the stream and
    fails the renewals waiting on it; the next renewal opens a new one."""

    def __init__(self) -> None:
        self._call: grpc.aio.StreamStreamCall | None = None
        self._conn: _Connection | None = None
        self._reader: asyncio.Task | None = None
        self._waiting: dict[int, deque[asyncio.Future]] = {}
        self._writing = asyncio.Lock()

    async def renew(self, etcd: Etcd, lease_id: int) -> int:
        conn = etcd._current()
        if self._call is None or self._conn is not conn:
            await self.close()
            self._conn, self._call = conn, conn.lease.LeaseKeepAlive()
            self._reader = asyncio.create_task(self._read(self._call), name="etcd-lease-renewals")
        call = self._call
        reply = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(lease_id, deque()).append(reply)
        try:
            async with self._writing:
                await asyncio.wait_for(call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)), etcd._timeout)
            return await asyncio.wait_for(asyncio.shield(reply), etcd._timeout)
        except _RenewalStreamBroken:
            raise
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError, TimeoutError) as err:
            if self._call is call:
                await self.close()
            raise _RenewalStreamBroken(str(err) or type(err).__name__) from None
        finally:
            waiting = self._waiting.get(lease_id)
            if waiting and reply in waiting:
                waiting.remove(reply)
            if not waiting:
                self._waiting.pop(lease_id, None)

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        reason = "etcd ended the stream"
        try:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    break
                waiting = self._waiting.get(msg.ID)
                if waiting:
                    waiting.popleft().set_result(max(msg.TTL, 0))
        except grpc.aio.AioRpcError as err:
            reason = _describe(err)
        if self._call is call:
            self._fail(reason)
            self._call = self._conn = None

    def _fail(self, reason: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(_RenewalStreamBroken(reason))

    async def close(self) -> None:
        call, reader = self._call, self._reader
        self._call = self._conn = self._reader = None
        self._fail("stream closed")
        if call is not None:
            call.cancel()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


class Etcd:
    """Use `await Etcd.connect([...])`; close with `await etcd.close()` or `async with`."""

    def __init__(
        self, endpoints: list[str], timeout: float, credentials: grpc.ChannelCredentials | None
    ) -> None:
        self._endpoints = endpoints
        self._targets = [_parse_endpoint(e)[0] for e in endpoints]
        self._timeout = timeout
        self._credentials = credentials
        self._index = 0
        # One per endpoint, opened on first use; a dead member's channel
        # reconnects in the background until the rotation comes back to it.
        self._conns: dict[int, _Connection] = {}
        # Open watch streams and their connection; those cancelled because
        # their member stopped answering.
        self._watches: dict[grpc.aio.StreamStreamCall, _Connection] = {}
        self._abandoned: set[grpc.aio.StreamStreamCall] = set()
        self._renewals = _Renewals()
        self._closed = False

    @classmethod
    async def connect(
        cls,
        endpoints: list[str],
        *,
        timeout: float = 5.0,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
    ) -> Etcd:
        if not endpoints:
            raise ValueError("no etcd endpoint given")
        tls = any(_parse_endpoint(e)[1] for e in endpoints)
        etcd = cls(list(endpoints), timeout, await _load_credentials(ca, cert, key, tls))
        await etcd._connect_first_answering()
        return etcd

    async def __aenter__(self) -> Etcd:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def endpoint(self) -> str:
        """The endpoint calls currently go to."""
        return self._endpoints[self._index]

    # ---- connection management -------------------------------------------

    def _open(self, index: int) -> _Connection:
        target = self._targets[index]
        if self._credentials is None:
            channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.secure_channel(target, self._credentials, options=_CHANNEL_OPTIONS)
        return _Connection(
            endpoint=self._endpoints[index],
            channel=channel,
            kv=rpc_pb2_grpc.KVStub(channel),
            watch=rpc_pb2_grpc.WatchStub(channel),
            lease=rpc_pb2_grpc.LeaseStub(channel),
            cluster=rpc_pb2_grpc.ClusterStub(channel),
        )

    def _connection(self, index: int) -> _Connection:
        if self._closed:
            raise EtcdError("the etcd client is closed")
        if index not in self._conns:
            self._conns[index] = self._open(index)
        return self._conns[index]

    def _current(self) -> _Connection:
        return self._connection(self._index)

    def _fail_over(self, failed: _Connection) -> _Connection:
        """Move on to the next endpoint, unless a concurrent call already did.

        The failed endpoint's channel stays open: closing it would cancel
        the other calls on it, a watch included, even where that member is
        still serving them (it may only have been slow or between leaders)."""
        if self._current() is failed:
            self._index = (self._index + 1) % len(self._endpoints)
        return self._current()

    def _give_up_on(self, silent: _Connection) -> None:
        """`silent` let a call pass its deadline: move new calls and its watches away."""
        for call, conn in list(self._watches.items()):
            if conn is silent:
                self._abandoned.add(call)
                call.cancel()
        self._fail_over(silent)

    def _unreachable(self, reasons: list[tuple[str, str]]) -> EtcdUnavailable:
        """reasons: (endpoint, what went wrong there) for each endpoint tried."""
        if len(reasons) == 1:
            detail = reasons[0][1]
        else:
            detail = "; ".join(f"{endpoint}: {reason}" for endpoint, reason in reasons)
        return EtcdUnavailable(f"etcd at {', '.join(self._endpoints)} is unreachable: {detail}")

    async def _connect_first_answering(self) -> None:
        reasons: list[tuple[str, str]] = []
        for index in range(len(self._endpoints)):
            conn = self._connection(index)
            probe = rpc_pb2.RangeRequest(key=b"\0", count_only=True)
            try:
                await conn.kv.Range(probe, timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                reasons.append((conn.endpoint, _describe(exc)))
                continue
            self._index = index
            return
        await self.close()
        raise self._unreachable(reasons)

    async def _call(
        self, method: Callable[[_Connection], Any], request: Any, what: str, *, read: bool = False
    ) -> Any:
        """One unary call with a deadline, failing over on UNAVAILABLE (and,
        for a `read`, on no answer in time)."""
        conn = self._current()
        reasons: list[tuple[str, str]] = []
        for _ in self._endpoints:
            try:
                return await method(conn)(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNAVAILABLE:
                    reasons.append((conn.endpoint, _describe(exc)))
                    conn = self._fail_over(conn)
                    continue
                if _no_answer_in_time(exc):
                    silent = conn
                    self._give_up_on(silent)
                    if read:
                        reasons.append((silent.endpoint, f"no answer within {self._timeout:g}s"))
                        conn = self._current()
                        continue
                    # A write may have been applied: do not resend it.
                    raise EtcdUnavailable(
                        f"etcd at {silent.endpoint} is unreachable: no answer to {what} "
                        f"within {self._timeout:g}s"
                    ) from None
                raise self._rejected(conn, what, exc) from None
        raise self._unreachable(reasons)

    @staticmethod
    def _rejected(conn: _Connection, what: str, exc: grpc.aio.AioRpcError) -> EtcdError:
        message = f"etcd at {conn.endpoint} rejected {what}: {_describe(exc)}"
        if "compacted" in (exc.details() or ""):
            return Compacted(message, 0)
        return EtcdError(message)

    async def _stream_exchange(
        self, method: Callable[[_Connection], Any], request: Any, what: str
    ) -> tuple[Any, grpc.aio.StreamStreamCall, _Connection]:
        """Open a bidirectional stream, send `request` and wait (bounded) for the
        first reply. Returns (reply, call, connection); the caller owns the call.
        Its requests (a watch, a lease keepalive) may be repeated safely, so
        a member that does not answer in time is left for the next one."""
        conn = self._current()
        reasons: list[tuple[str, str]] = []
        for _ in self._endpoints:
            call = method(conn)()

            async def first_reply() -> Any:
                await call.write(request)
                return await call.read()

            try:
                reply = await asyncio.wait_for(first_reply(), self._timeout)
            except grpc.aio.AioRpcError as exc:
                call.cancel()
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise self._rejected(conn, what, exc) from None
                reasons.append((conn.endpoint, _describe(exc)))
                conn = self._fail_over(conn)
                continue
            except TimeoutError:
                call.cancel()
                reasons.append((conn.endpoint, f"no answer to {what} within {self._timeout:g}s"))
                self._give_up_on(conn)
                conn = self._current()
                continue
            if reply is grpc.aio.EOF:
                call.cancel()
                raise EtcdUnavailable(f"etcd at {conn.endpoint} closed the stream for {what}")
            return reply, call, conn
        raise self._unreachable(reasons)

    async def close(self) -> None:
        self._closed = True
        await self._renewals.close()
        conns, self._conns = list(self._conns.values()), {}
        await asyncio.gather(*(conn.channel.close() for conn in conns), return_exceptions=True)

    # ---- key-value --------------------------------------------------------

    async def get(self, key: str) -> KV | None:
        request = rpc_pb2.RangeRequest(key=key.encode())
        resp = await self._call(lambda c: c.kv.Range, request, f"get {key}", read=True)
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def get_prefix(self, prefix: str, revision: int = 0, keys_only: bool = False) -> tuple[list[KV], int]:
        """All keys under `prefix`, sorted by key, and the revision they were read at.

        With `revision`, the keys as they were at that (past) revision; raises
        Compacted when etcd no longer keeps it. With `keys_only`, values come
        back empty (for a caller that needs only the names: far less to send)."""
        start = prefix.encode() or b"\0"
        request = rpc_pb2.RangeRequest(
            key=start,
            range_end=prefix_range_end(prefix.encode()),
            sort_order=rpc_pb2.RangeRequest.ASCEND,
            sort_target=rpc_pb2.RangeRequest.KEY,
            revision=revision,
            keys_only=keys_only,
        )
        resp = await self._call(lambda c: c.kv.Range, request, f"get prefix {prefix}", read=True)
        return [_kv(kv) for kv in resp.kvs], resp.header.revision

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        request = rpc_pb2.PutRequest(key=key.encode(), value=value, lease=lease)
        resp = await self._call(lambda c: c.kv.Put, request, f"put {key}")
        return resp.header.revision

    async def delete(self, key: str) -> int:
        request = rpc_pb2.DeleteRangeRequest(key=key.encode())
        resp = await self._call(lambda c: c.kv.DeleteRange, request, f"delete {key}")
        return resp.header.revision

    async def delete_prefix(self, prefix: str) -> int:
        request = rpc_pb2.DeleteRangeRequest(
            key=prefix.encode() or b"\0", range_end=prefix_range_end(prefix.encode())
        )
        resp = await self._call(lambda c: c.kv.DeleteRange, request, f"delete prefix {prefix}")
        return resp.header.revision

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        request = rpc_pb2.TxnRequest(
            compare=[_compare_to_proto(c) for c in compares],
            success=[_op_to_proto(op) for op in success],
            failure=[_op_to_proto(op) for op in failure],
        )
        resp = await self._call(lambda c: c.kv.Txn, request, "a transaction")
        return TxnResult(succeeded=resp.succeeded, revision=resp.header.revision)

    async def revision(self) -> int:
        request = rpc_pb2.RangeRequest(key=b"\0", count_only=True)
        resp = await self._call(lambda c: c.kv.Range, request, "a revision read", read=True)
        return resp.header.revision

    async def compact(self, revision: int) -> None:
        request = rpc_pb2.CompactionRequest(revision=revision, physical=True)
        await self._call(lambda c: c.kv.Compact, request, f"compact to revision {revision}")

    # ---- watch ------------------------------------------------------------

    async def watch(
        self,
        prefix: str,
        start_revision: int,
        *,
        progress_notify: bool = False,
        progress_interval: float | None = None,
    ) -> AsyncIterator[tuple[int, list[Event]]]:
        """Changes under `prefix` from `start_revision` on, as (revision, events),
        one item per revision in order; events carry the previous value.

        With `progress_notify`, etcd's own periodic progress notifications come
        out as (revision, []). `progress_interval` additionally asks for one
        every so many seconds, so an idle watcher still learns the current
        revision. Raises Compacted if `start_revision` is no longer available
        and EtcdUnavailable when the stream breaks; resume from the last
        revision seen + 1.
        """
        create = rpc_pb2.WatchCreateRequest(
            key=prefix.encode() or b"\0",
            range_end=prefix_range_end(prefix.encode()),
            start_revision=start_revision,
            progress_notify=progress_notify,
            prev_kv=True,
        )
        reply, call, conn = await self._stream_exchange(
            lambda c: c.watch.Watch, rpc_pb2.WatchRequest(create_request=create), f"a watch on {prefix}"
        )
        self._watches[call] = conn
        ticker = None
        if progress_interval:
            ticker = asyncio.create_task(self._request_progress(call, progress_interval))
        try:
            while True:
                if reply.compact_revision:
                    raise Compacted(
                        f"cannot watch {prefix} from revision {start_revision}: etcd compacted "
                        f"its history up to revision {reply.compact_revision}",
                        reply.compact_revision,
                    )
                if reply.canceled:
                    reason = reply.cancel_reason or "no reason given"
                    raise EtcdError(f"etcd canceled the watch on {prefix}: {reason}")
                if reply.events:
                    for group in _group_by_revision(reply.events):
                        yield group
                elif not reply.created:
                    yield reply.header.revision, []
                try:
                    reply = await call.read()
                except asyncio.CancelledError:
                    # Our own cancel (see _give_up_on) ends the watch as a
                    # broken one; a cancelled caller is cancelled as usual.
                    task = asyncio.current_task()
                    if call in self._abandoned and not (task and task.cancelling()):
                        raise EtcdUnavailable(
                            f"the watch on {prefix} left etcd {conn.endpoint}, which stopped answering"
                        ) from None
                    raise
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.UNAVAILABLE:
                        self._fail_over(conn)
                    raise EtcdUnavailable(
                        f"the watch on {prefix} at etcd {conn.endpoint} broke: {_describe(exc)}"
                    ) from None
                if reply is grpc.aio.EOF:
                    raise EtcdUnavailable(f"etcd at {conn.endpoint} ended the watch on {prefix}")
        finally:
            self._watches.pop(call, None)
            self._abandoned.discard(call)
            if ticker is not None:
                ticker.cancel()
            call.cancel()

    @staticmethod
    async def _request_progress(call: grpc.aio.StreamStreamCall, interval: float) -> None:
        request = rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest())
        while True:
            await asyncio.sleep(interval)
            try:
                await call.write(request)
            except (grpc.RpcError, asyncio.InvalidStateError):
                return  # the stream is over; the reading side reports why

    # ---- cluster ----------------------------------------------------------

    async def members(self) -> list[Member]:
        """Every member of the cluster with the client and peer URLs it advertises."""
        resp = await self._call(lambda c: c.cluster.MemberList, rpc_pb2.MemberListRequest(),
                                "a member list", read=True)
        return [Member(m.name, tuple(m.clientURLs), tuple(m.peerURLs)) for m in resp.members]

    # ---- leases -----------------------------------------------------------

    async def grant(self, ttl: int) -> int:
        resp = await self._call(
            lambda c: c.lease.LeaseGrant, rpc_pb2.LeaseGrantRequest(TTL=ttl), f"a {ttl}s lease grant"
        )
        if resp.error:
            raise EtcdError(f"etcd refused a {ttl}s lease: {resp.error}")
        return resp.ID

    async def keepalive(self, lease_id: int) -> int:
        """Renew the lease; returns its remaining TTL, 0 if it expired or is unknown.

        Renewals share one LeaseKeepAlive stream: opening a stream for each
        (as the fallback below does) cost about a millisecond of CPU, most of
        a controller's idle cost when it renewed a lease per connected agent
        (it now renews one for all of them, controller/agent_leases.py, beside
        its presence, its election and the requests' leases). When the shared stream fails, this renewal takes
        its own stream, which fails over to another member as any call does."""
        try:
            return await self._renewals.renew(self, lease_id)
        except _RenewalStreamBroken as err:
            log.info("shared lease keepalive stream lost (%s): renewing on a stream of its own", err)
        reply, call, _ = await self._stream_exchange(
            lambda c: c.lease.LeaseKeepAlive,
            rpc_pb2.LeaseKeepAliveRequest(ID=lease_id),
            f"a keepalive of lease {lease_id:x}",
        )
        call.cancel()
        return max(reply.TTL, 0)

    async def revoke(self, lease_id: int) -> None:
        """Revoke the lease, deleting its keys. An unknown lease (expired, or
        already revoked) counts as revoked."""
        try:
            await self._call(
                lambda c: c.lease.LeaseRevoke,
                rpc_pb2.LeaseRevokeRequest(ID=lease_id),
                f"a revoke of lease {lease_id:x}",
            )
        except EtcdUnavailable:
            raise
        except EtcdError as exc:
            if "lease not found" not in str(exc):
                raise
