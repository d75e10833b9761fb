"""The rule for files holding secrets (proto/private_files.py): 0600 files in 0700 directories."""
from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from proto.private_files import open_private, private_dir, write_private
from tests.helpers.file_modes import loose_modes


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def open_umask():
    """The most permissive umask: modes must not depend on the caller's."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_private_dir_makes_every_missing_level_0700_and_tightens_the_leaf(tmp_path, open_umask):
    tmp_path.chmod(0o755)
    made = private_dir(tmp_path / "a" / "b" / "c")
    assert made == tmp_path / "a" / "b" / "c"
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    assert mode(tmp_path) == 0o755                      # what existed above is not ours to change
    loose = tmp_path / "old"
    loose.mkdir(mode=0o755)
    private_dir(loose)
    assert mode(loose) == 0o700


def test_write_private_replaces_a_file_whole_with_mode_0600(tmp_path, open_umask):
    path = tmp_path / "config.json"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, '{"env": {"SECRET": "x"}}')
    assert path.read_text() == '{"env": {"SECRET": "x"}}' and mode(path) == 0o600
    write_private(path, b"bytes")
    assert path.read_bytes() == b"bytes" and mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]    # no temporary file left


def test_write_private_relative_to_an_open_directory(tmp_path, open_umask):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        write_private(Path("exit.json"), "{}", dir_fd=fd)
    finally:
        os.close(fd)
    assert (tmp_path / "exit.json").read_text() == "{}" and mode(tmp_path / "exit.json") == 0o600


def test_concurrent_writers_of_one_file_never_mix(tmp_path):
    path = tmp_path / "pid.json"
    texts = [str(i) * 1000 for i in range(8)]
    threads = [threading.Thread(target=write_private, args=(path, text)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_text() in texts and mode(path) == 0o600


def test_open_private_appends_or_truncates_and_tightens_an_existing_file(tmp_path, open_umask):
    log = tmp_path / "container.log"
    log.write_text("first run\n")
    log.chmod(0o644)
    fd = open_private(log, append=True)
    os.write(fd, b"second run\n")
    os.close(fd)
    assert log.read_text() == "first run\nsecond run\n" and mode(log) == 0o600
    fd = open_private(log, append=False)
    os.close(fd)
    assert log.read_text() == "" and mode(log) == 0o600
    fresh = open_private(tmp_path / "shim.log", append=False)
    os.close(fresh)
    assert mode(tmp_path / "shim.log") == 0o600


def test_the_mode_check_names_each_loose_file_and_directory(tmp_path):
    """The checker the integration test relies on: silent on a tree that keeps
    the rule, and naming each file or directory that does not (the control)."""
    root = private_dir(tmp_path / "state")
    write_private(root / "ok.json", "{}")
    os.symlink("ok.json", root / "link")
    assert loose_modes(root) == []
    (root / "leak.json").write_text("{}")
    (root / "leak.json").chmod(0o644)
    (root / "open").mkdir(mode=0o755)
    (root / "open").chmod(0o755)
    assert loose_modes(root) == [f"0644 {root}/leak.json", f"0755 {root}/open/"]
