"""Named network namespaces (the /run/netns files `ip netns` also uses).

pyroute2 creates a namespace and opens a netlink socket inside one by
forking a short-lived child process and waiting for it; that blocks for
~10 ms, so those calls are sent to a thread on purpose instead of stalling
the agent's event loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import socket
from collections.abc import AsyncIterator

from pyroute2 import AsyncIPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink import NETLINK_ROUTE

from agent.kernel.links import IFF_UP

NETNS_DIR = "/run/netns"

# A socket handed to AsyncIPRoute(use_socket=...) skips pyroute2's own
# buffer setup; give it pyroute2's 1 MiB so FDB batches have room for acks.
_SOCKET_BUFFER = 1 << 20


class NetnsNotFound(FileNotFoundError):
    """A named network namespace the caller relies on does not exist."""


def netns_path(name: str) -> str:
    _check_name(name)
    return f"{NETNS_DIR}/{name}"


def list_netns(prefix: str) -> list[str]:
    """Names of the existing namespaces that start with `prefix`, sorted."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def netns_exists(name: str) -> bool:
    """True if /run/netns/NAME is a mounted namespace (not a bare file)."""
    return _is_netns_mount(netns_path(name))


def _is_netns_mount(path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    # Every namespace inode lives on the one nsfs device; a crash between
    # creating the mount point and bind-mounting it leaves a plain file on
    # the /run filesystem instead.
    return st.st_dev == os.stat("/proc/thread-self/ns/net").st_dev


@functools.cache
def _netns_dir_propagates() -> bool:
    """False if mounts made under NETNS_DIR here cannot reach other processes.

    A namespace "exists" by name only through a bind mount on its file.
    `ip netns exec` runs its command in a new mount namespace whose mounts
    are slaves of the original ones: they receive mounts from outside but
    never send theirs back, so namespaces created in there are seen by
    nobody else. mountinfo marks such a mount "master:N".
    """
    best_point, best_tags = "", []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            tags = fields[6 : fields.index("-")]
            covers = point == NETNS_DIR or NETNS_DIR.startswith(
                point.rstrip("/") + "/"
            )
            # Later lines are mounted on top of earlier ones: ">=" keeps them.
            if covers and len(point) >= len(best_point):
                best_point, best_tags = point, tags
    return not any(tag.startswith("master:") for tag in best_tags)


async def ensure_netns(name: str) -> None:
    """Create the namespace if absent (repairing a half-built one), lo up."""
    path = netns_path(name)
    if not _netns_dir_propagates():
        raise RuntimeError(
            f"cannot create network namespace {name!r}: {NETNS_DIR} is a "
            f"slave mount in this process's mount namespace, so the "
            f"namespace would be invisible to every other process (and to "
            f"this agent after a restart). Was the agent started with "
            f"`ip netns exec`? Enter only the network namespace instead, "
            f"e.g. `nsenter --net={NETNS_DIR}/HOST ...`"
        )
    if not netns_exists(name):
        if os.path.lexists(path):
            await asyncio.to_thread(_remove_mount_point, name)
        try:
            await asyncio.to_thread(pyroute2_netns.create, name)
        except FileExistsError:
            # Someone else created it between our check and create.
            if not netns_exists(name):
                raise RuntimeError(
                    f"network namespace {name!r}: {path} exists but is not "
                    f"a namespace mount"
                ) from None
    async with iproute(name) as ipr:
        (lo,) = await ipr.link("get", ifname="lo")
        if not lo["flags"] & IFF_UP:
            await ipr.link("set", index=lo["index"], state="up")


async def remove_netns(name: str) -> None:
    """Delete the namespace; its interfaces go with it. Absent is fine."""
    if os.path.lexists(netns_path(name)):
        await asyncio.to_thread(_remove_mount_point, name)


@contextlib.asynccontextmanager
async def iproute(name: str | None = None) -> AsyncIterator[AsyncIPRoute]:
    """An AsyncIPRoute bound to namespace `name` (None: the current one).

    Unlike `AsyncIPRoute(netns=name)` this never creates a missing
    namespace: a typo must not silently build an empty one.
    """
    if name is None:
        ipr = AsyncIPRoute()
        try:
            yield ipr
        finally:
            ipr.close()
        return
    sock = await asyncio.to_thread(_open_rtnl_socket, name)
    try:
        ipr = AsyncIPRoute(use_socket=sock)
        try:
            yield ipr
        finally:
            ipr.close()
    finally:
        sock.close()


def _open_rtnl_socket(name: str) -> socket.socket:
    if not netns_exists(name):
        raise NetnsNotFound(
            errno.ENOENT,
            f"network namespace {name!r} does not exist",
            netns_path(name),
        )
    sock = pyroute2_netns.create_socket(
        name,
        socket.AF_NETLINK,
        socket.SOCK_DGRAM,
        NETLINK_ROUTE,
        flags=0,
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
    return sock


def _remove_mount_point(name: str) -> None:
    # pyroute2 detaches the mount (ignoring "not mounted", which is what a
    # half-built leftover is) and unlinks the file.
    try:
        pyroute2_netns.remove(name)
    except FileNotFoundError:
        pass  # removed concurrently


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid network namespace name {name!r}")
