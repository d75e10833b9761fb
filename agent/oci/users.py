"""`-u USER[:GROUP]` resolved against the container's own /etc/passwd and /etc/group, as Docker does.

  ""            root: uid 0, gid 0
  "name"        the passwd entry's uid and primary gid; unknown names fail
  "1000"        uid 1000, with the gid of a passwd entry for 1000 if any, else 0
  "u:g", "u:50" the group by name (from /etc/group) or number replaces the primary gid
Supplementary groups, for a user in /etc/passwd, are its primary group and
the /etc/group entries listing its name (as a login's initgroups(3));
HOME is the passwd entry's home directory, else "/".

The files are read from the container's layers (its upper directory first,
then the image), never through a symlink: an image's /etc/passwd pointing
elsewhere must not make the agent read a host file.
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.oci.model import ContainerError

MAX_FILE = 4 * 1024 * 1024
ID_MAX = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


@dataclass(frozen=True)
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


def resolve(spec: str, passwd: str | None, group: str | None) -> User:
    """The user `spec` names, given the texts of /etc/passwd and /etc/group (None: absent)."""
    user_part, _, group_part = spec.partition(":")
    entries = _parse_passwd(passwd or "")
    if not user_part:
        user_part = "0"
    if user_part.isdigit():
        uid = _id(user_part, spec)
        entry = next((e for e in entries if e.uid == uid), None)
    else:
        entry = next((e for e in entries if e.name == user_part), None)
        if entry is None:
            raise ContainerError(f"unable to find user {user_part}: no matching entries in the "
                                 "image's /etc/passwd")
        uid = entry.uid
    gid = entry.gid if entry else 0
    groups = _parse_group(group or "")
    if group_part:
        if group_part.isdigit():
            gid = _id(group_part, spec)
        else:
            found = next((g for g in groups if g.name == group_part), None)
            if found is None:
                raise ContainerError(f"unable to find group {group_part}: no matching entries in "
                                     "the image's /etc/group")
            gid = found.gid
    additional: tuple[int, ...] = ()
    if entry is not None:
        # As initgroups(3) at a login: the primary group and every group naming the user.
        additional = tuple(sorted({gid} | {g.gid for g in groups if entry.name in g.members}))
    return User(uid, gid, additional, entry.home if entry and entry.home else "/")


def read_layered(layers: Sequence[Path], path: str) -> str | None:
    """The text of `path` (absolute, inside the container) from the first layer that has it.

    A layer hides the ones below it: an overlayfs whiteout (a 0/0 character
    device) there means the file was deleted. Symlinks are not followed.
    """
    for layer in layers:
        found = _read_no_follow(layer, path)
        if found is _WHITEOUT:
            return None
        if found is not None:
            return found  # type: ignore[return-value]
    return None


_WHITEOUT = object()


def _read_no_follow(layer: Path, path: str) -> object:
    parts = [p for p in path.split("/") if p]
    try:
        fd = os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return _WHITEOUT
            if stat.S_ISLNK(st.st_mode):
                raise ContainerError(f"the image's {path} passes through a symlink: "
                                     "the user cannot be looked up safely")
            if not last and not stat.S_ISDIR(st.st_mode) or last and not stat.S_ISREG(st.st_mode):
                return None
            try:
                next_fd = os.open(part, flags | (0 if last else os.O_DIRECTORY), dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    return None
                raise
            os.close(fd)
            fd = next_fd
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read(MAX_FILE).decode(errors="replace")
    finally:
        if fd >= 0:
            os.close(fd)


def _parse_passwd(text: str) -> list[_Passwd]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if line.startswith("#") or len(fields) < 7 or not fields[2].isdigit() \
                or not fields[3].isdigit():
            continue
        entries.append(_Passwd(fields[0], int(fields[2]), int(fields[3]), fields[5]))
    return entries


def _parse_group(text: str) -> list[_Group]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if line.startswith("#") or len(fields) < 4 or not fields[2].isdigit():
            continue
        members = tuple(m for m in fields[3].split(",") if m)
        entries.append(_Group(fields[0], int(fields[2]), members))
    return entries


def _id(text: str, spec: str) -> int:
    value = int(text)
    if value > ID_MAX:
        raise ContainerError(f"user {spec!r}: id {value} is out of range (0..{ID_MAX})")
    return value
