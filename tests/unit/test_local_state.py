"""LocalState writes a record only when it changed, and never loses one."""
from __future__ import annotations

from agent.local_state import LocalContainer, LocalState
from proto.records import ContainerSpec


def _record(name: str = "web", gw_ip: str = "") -> LocalContainer:
    return LocalContainer(spec=ContainerSpec(id="ab" * 32, name=name, host="h1", command=["sleep", "1"]),
                          gw_ip=gw_ip)


def test_saving_an_unchanged_record_leaves_the_file_alone(tmp_path):
    local = LocalState(tmp_path)
    local.save(_record())
    path = tmp_path / "web.json"
    inode = path.stat().st_ino
    local.save(_record())
    assert path.stat().st_ino == inode  # not replaced: a rewrite renames a new file over it
    local.load_all()
    local.save(_record())
    assert path.stat().st_ino == inode


def test_a_changed_record_is_written(tmp_path):
    local = LocalState(tmp_path)
    local.save(_record())
    local.save(_record(gw_ip="172.18.0.2"))
    assert LocalState(tmp_path).load_all()["web"].gw_ip == "172.18.0.2"


def test_a_record_deleted_behind_its_back_is_written_again(tmp_path):
    local = LocalState(tmp_path)
    local.save(_record())
    (tmp_path / "web.json").unlink()
    assert local.load_all() == {}
    local.save(_record())
    assert LocalState(tmp_path).load_all()["web"] == _record()


def test_delete_then_save_writes_it_again(tmp_path):
    local = LocalState(tmp_path)
    local.save(_record())
    local.delete("web")
    local.save(_record())
    assert (tmp_path / "web.json").exists()
