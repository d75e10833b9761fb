"""A blocking rtnetlink socket inside a named namespace, for bulk table work.

Two kinds of exchange:
  - `acknowledged`: many requests per send(), each with NLM_F_ACK, and one
    acknowledgement collected per request, matched by sequence number so
    every outcome belongs to exactly one request;
  - `dump`: one dump request, its multipart reply parsed message by message.

Every call blocks (the kernel applies a whole send() before it returns, and
recv() waits), so the caller runs a channel in a worker thread.
"""
from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

from agent.kernel import rtnl_encode as enc
# netns.py owns entering a namespace to open a socket there.
from agent.kernel.netns import _open_rtnl_socket

T = TypeVar("T")

# The kernel queues the acknowledgements of a whole send() before send()
# returns; any that do not fit the receive buffer are dropped (and the
# socket reports ENOBUFS), leaving those requests' outcome unknown. A queued
# ack is charged its skb's truesize: 832 bytes measured (SO_MEMINFO) on
# 6.18 for both success and error acks of these small requests, so 2 KiB
# per request leaves a 2.4x margin.
ACK_TRUESIZE_BOUND = 2048
# More requests per send() barely helps past this: the syscall is <1% of
# the kernel's per-entry work.
MAX_WINDOW = 1024
# Dump replies come in skbs of at most 32 KiB; twice that never truncates.
RECV_BUFFER = 64 * 1024
# Retries for a dump the kernel marks inconsistent (the table changed
# while it was being walked).
DUMP_ATTEMPTS = 5


class DumpInterrupted(RuntimeError):
    """The table kept changing under every dump attempt."""


class RtnlChannel:
    """One NETLINK_ROUTE socket in `netns`; close it (or use `with`) when done."""

    def __init__(self, netns: str, timeout: float) -> None:
        self._timeout = timeout
        self._sock = _open_rtnl_socket(netns)
        try:
            self._sock.settimeout(timeout)
            rcvbuf = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except BaseException:
            self._sock.close()
            raise
        # Sized from what the kernel granted (rmem_max may cap the request).
        self.window = max(1, min(MAX_WINDOW, rcvbuf // ACK_TRUESIZE_BOUND))
        self._seq = 0
        self._buf = bytearray(RECV_BUFFER)

    def __enter__(self) -> RtnlChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def reserve(self, count: int) -> int:
        """Reserve `count` consecutive sequence numbers; returns the first."""
        first = self._seq + 1
        self._seq += count
        return first

    def acknowledged(self, requests: Sequence[bytes], first_seq: int) -> list[int]:
        """Send requests[i] (encoded with seq first_seq + i); their errnos, 0 = done.

        The requests go in windows that the receive buffer can hold the acks
        of, and each window is fully acknowledged before the next is sent.
        """
        codes = [-1] * len(requests)  # -1: no acknowledgement yet
        for start in range(0, len(requests), self.window):
            stop = min(start + self.window, len(requests))
            self._sock.send(b"".join(requests[start:stop]))
            self._collect_acks(codes, first_seq, start, stop)
        return codes

    def _collect_acks(self, codes: list[int], first_seq: int, start: int, stop: int) -> None:
        buf, recv_into = self._buf, self._sock.recv_into
        pending = stop - start
        while pending:
            try:
                size = recv_into(buf)
            except TimeoutError:
                raise TimeoutError(
                    f"kernel acknowledgements for {pending} of {stop - start} "
                    f"requests did not arrive within {self._timeout}s"
                ) from None
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    raise OSError(
                        errno.ENOBUFS,
                        "netlink receive buffer overflowed: acknowledgements "
                        "were dropped, so the outcome of some requests is unknown",
                    ) from None
                raise
            for msg in enc.messages(buf, size):
                index = msg.seq - first_seq
                if msg.type == enc.NLMSG_ERROR and start <= index < stop and codes[index] < 0:
                    codes[index] = enc.ack_errno(buf, msg)
                    pending -= 1

    def link_index(self, ifname: str) -> int | None:
        """The ifindex of `ifname` in this namespace, or None if there is none."""
        seq = self.reserve(1)
        self._sock.send(enc.getlink(seq, ifname))
        while True:
            size = self._recv()
            for msg in enc.messages(self._buf, size):
                if msg.seq != seq:
                    continue
                if msg.type == enc.RTM_NEWLINK:
                    return enc.link_index(self._buf, msg)
                if msg.type == enc.NLMSG_ERROR:
                    code = enc.ack_errno(self._buf, msg)
                    if code == errno.ENODEV:
                        return None
                    raise OSError(code, f"{ifname}: {_strerror(code)}")

    def dump(self, request: Callable[[int], bytes],
             parse: Callable[[bytearray, enc.Message], T]) -> list[T]:
        """Send request(seq), a dump request; parse(buf, msg) for each reply message.

        A dump the kernel flags as interrupted is thrown away and redone.
        """
        for _ in range(DUMP_ATTEMPTS):
            seq = self.reserve(1)
            self._sock.send(request(seq))
            items, interrupted = self._read_dump(seq, parse)
            if not interrupted:
                return items
        raise DumpInterrupted(
            f"the kernel table changed during each of {DUMP_ATTEMPTS} dumps"
        )

    def _read_dump(self, seq: int, parse: Callable[[bytearray, enc.Message], T]
                   ) -> tuple[list[T], bool]:
        items: list[T] = []
        interrupted = False
        while True:
            size = self._recv()
            for msg in enc.messages(self._buf, size):
                if msg.seq != seq:
                    continue
                interrupted |= bool(msg.flags & enc.NLM_F_DUMP_INTR)
                if msg.type == enc.NLMSG_DONE:
                    return items, interrupted
                if msg.type == enc.NLMSG_ERROR:
                    code = enc.ack_errno(self._buf, msg)
                    raise OSError(code, f"dump failed: {_strerror(code)}")
                items.append(parse(self._buf, msg))

    def _recv(self) -> int:
        try:
            return self._sock.recv_into(self._buf)
        except TimeoutError:
            raise TimeoutError(
                f"no netlink reply within {self._timeout}s"
            ) from None


def _strerror(code: int) -> str:
    return f"{os.strerror(code)} (errno {code})"
