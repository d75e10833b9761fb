"""Named network namespaces (the /run/netns files `ip netns` also uses).

pyroute2 creates a namespace, and opens a netlink socket inside one, by
forking a child process; a fork beside gRPC's threads can crash the child.
So we never fork: setns() and unshare(CLONE_NEWNET) act on the calling
thread only, so a worker thread steps into the namespace, does its one
thing, and steps back. Those calls are sent to a thread on purpose, also
because they block.
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

from agent.kernel import linux
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
            await asyncio.to_thread(_create_netns, name)
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


async def adopt_netns(name: str, source: str) -> None:
    """Give the namespace at `source` (another program's: a container engine's)
    the name `name` here, by a bind mount, as `ip netns attach` does. Removing
    the name later (remove_netns) only drops this mount: the namespace lives
    on while its owner holds it. An existing name is replaced."""
    _check_name(name)
    if not _netns_dir_propagates():
        raise RuntimeError(f"cannot name network namespace {name!r}: {NETNS_DIR} is a slave mount here")
    if os.path.lexists(netns_path(name)):
        await asyncio.to_thread(_remove_mount_point, name)
    await asyncio.to_thread(_bind_netns, source, netns_path(name))


def _bind_netns(source: str, path: str) -> None:
    # Opened first: a path that is not a network namespace is refused by name,
    # not bound (a bind mount of a plain file would look like a name here).
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if linux.ns_type(fd) != linux.CLONE_NEWNET:
            raise ValueError(f"{source} is not a network namespace")
        os.makedirs(NETNS_DIR, exist_ok=True)
        _share_netns_dir()
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        try:
            linux.mount(f"/proc/self/fd/{fd}", path, None, linux.MS_BIND)
        except BaseException:
            os.unlink(path)
            raise
    finally:
        os.close(fd)


async def link_names(name: str) -> set[str]:
    """The names of the links in namespace `name`."""
    async with iproute(name) as ipr:
        return {link.get("ifname") async for link in await ipr.link("dump")}


async def interface_with_mac(name: str, mac: str, address: str) -> str:
    """The name of the link with MAC `mac` in namespace `name` once it holds
    `address` (whoever moved it there has finished setting it up), or ""."""
    async with iproute(name) as ipr:
        links = [link async for link in await ipr.link("dump")
                 if (link.get("address") or "").lower() == mac.lower()]
        if not links:
            return ""
        index = links[0]["index"]
        async for addr in await ipr.addr("dump"):
            if addr["index"] == index and addr.get("address") == address:
                return links[0].get("ifname")
    return ""


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
    with _thread_in_netns(netns_path(name)):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
    return sock


@contextlib.contextmanager
def _thread_in_netns(path: str | None):
    """Move this thread into the namespace at `path` (None: a new one), then back.

    A socket keeps the namespace it was created in, so what is opened inside
    stays there after the thread returns.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if path is None:
            linux.unshare(linux.CLONE_NEWNET)
        else:
            target = os.open(path, os.O_RDONLY)
            try:
                linux.setns(target, linux.CLONE_NEWNET)
            finally:
                os.close(target)
        try:
            yield
        finally:
            # A thread left in the wrong namespace would poison every later
            # call that lands on it: there is no way to continue safely.
            try:
                linux.setns(own, linux.CLONE_NEWNET)
            except OSError as err:
                os.write(2, f"fatal: cannot return a thread to its network namespace: {err}\n".encode())
                os._exit(70)
    finally:
        os.close(own)


def _create_netns(name: str) -> None:
    """What `ip netns add` does, for this thread's new namespace."""
    path = netns_path(name)
    os.makedirs(NETNS_DIR, exist_ok=True)
    _share_netns_dir()
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        with _thread_in_netns(None):
            linux.mount("/proc/thread-self/ns/net", path, None, linux.MS_BIND)
    except BaseException:
        os.unlink(path)
        raise


def _share_netns_dir() -> None:
    """Make /run/netns a shared mount, so namespace mounts propagate (as iproute2 does)."""
    try:
        linux.mount("", NETNS_DIR, "none", linux.MS_SHARED | linux.MS_REC)
    except OSError as err:
        if err.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        linux.mount(NETNS_DIR, NETNS_DIR, "none", linux.MS_BIND | linux.MS_REC)
        linux.mount("", NETNS_DIR, "none", linux.MS_SHARED | linux.MS_REC)


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


def socket_in(name: str, address: str, kind: socket.SocketKind) -> socket.socket:
    """A UDP or (listening) TCP socket bound to `address` on a free port inside
    namespace `name` (blocking: call it in a thread). It stays in that
    namespace, served from here."""
    with _thread_in_netns(netns_path(name)):
        sock = socket.socket(socket.AF_INET, kind)
        try:
            sock.bind((address, 0))
            if kind == socket.SOCK_STREAM:
                sock.listen(16)
        except OSError:
            sock.close()
            raise
    sock.setblocking(False)
    return sock
