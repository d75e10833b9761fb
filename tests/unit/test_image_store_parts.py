"""agent.images without a registry: image configs, the OCI layout reader, tool error lines."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from agent.images import layout
from agent.images.registry import RegistryAccess
from agent.images.store import ImageStore
from proto import image_ref, tools
from proto.errors import ImageError, InvalidArgument
from proto.image_config import Healthcheck, ImageConfig

DOCKER_CONFIG = {
    "architecture": "amd64", "os": "linux", "created": "2026-01-02T03:04:05Z",
    "config": {
        "User": "app", "Env": ["PATH=/bin", "A=1", "A=2", "EMPTY"], "Entrypoint": ["/entry"],
        "Cmd": None, "WorkingDir": "/srv", "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        "Labels": {"k": "v"}, "StopSignal": "SIGQUIT",
        "Healthcheck": {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 30_000_000_000,
                        "Timeout": 5_000_000_000, "Retries": 3},
    },
    "rootfs": {"type": "layers", "diff_ids": []},
}


def test_an_image_config_is_read_with_its_docker_fields():
    config = ImageConfig.from_image_json(DOCKER_CONFIG, "x")
    assert config.entrypoint == ("/entry",) and config.cmd == ()
    assert config.user == "app" and config.working_dir == "/srv"
    assert config.exposed_ports == ("53/udp", "8080/tcp")
    assert config.env_dict() == {"PATH": "/bin", "A": "2", "EMPTY": ""}
    assert config.healthcheck == Healthcheck(("CMD-SHELL", "wget -q localhost"), 30_000_000_000,
                                             5_000_000_000, 0, 3)
    assert (config.stop_signal, config.architecture, config.os) == ("SIGQUIT", "amd64", "linux")
    assert ImageConfig.from_image_json({"architecture": "amd64"}, "x") == ImageConfig(architecture="amd64")
    assert ImageConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("bad, message", [
    ([], "not a JSON object"),
    ({"config": []}, "'config' is not a JSON object"),
    ({"config": {"Cmd": "sh"}}, "expected a list of strings"),
    ({"config": {"ExposedPorts": ["80/tcp"]}}, "expected an object"),
    ({"config": {"Healthcheck": {"Test": ["NONE"], "Interval": -1}}}, "Healthcheck Interval"),
])
def test_a_broken_image_config_names_the_image(bad, message):
    with pytest.raises(ImageError, match=f"image busybox:1.*{message}"):
        ImageConfig.from_image_json(bad, "busybox:1")


def write_blob(root, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def fake_layout(root, ref_name: str = "tok") -> tuple[str, str]:
    config_digest = write_blob(root, json.dumps(DOCKER_CONFIG).encode())
    manifest = {"schemaVersion": 2, "config": {"digest": config_digest, "size": 1},
                "layers": [{"digest": "sha256:" + "a" * 64, "size": 100},
                           {"digest": "sha256:" + "b" * 64, "size": 23}]}
    manifest_digest = write_blob(root, json.dumps(manifest).encode())
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
         "size": 1, "annotations": {layout.REF_NAME: ref_name}}]}))
    return manifest_digest, config_digest


def test_the_layout_reader_follows_a_name_to_its_config_checking_digests(tmp_path):
    manifest_digest, config_digest = fake_layout(tmp_path)
    found = layout.read_manifest(tmp_path, "tok")
    assert (found.digest, found.config_digest, found.layers_size) == (manifest_digest, config_digest, 123)
    assert found.config["config"]["User"] == "app"
    assert layout.read_manifest(tmp_path, "other") is None
    assert layout.read_manifest(tmp_path / "missing", "tok") is None
    (tmp_path / "blobs" / "sha256" / config_digest[7:]).write_bytes(b"{}")
    with pytest.raises(ImageError, match="does not match its digest"):
        layout.read_manifest(tmp_path, "tok")
    with pytest.raises(ImageError, match="unsupported digest"):
        layout.read_blob(tmp_path, "md5:abc")


def test_an_index_instead_of_a_manifest_is_refused(tmp_path):
    fake_layout(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    index["manifests"][0]["mediaType"] = "application/vnd.oci.image.index.v1+json"
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ImageError, match="not a single-platform image manifest"):
        layout.read_manifest(tmp_path, "tok")


def test_tool_failures_are_one_line():
    logrus = (b'Getting image source signatures\n'
              b'time="2026-12-02T16:22:26Z" level=fatal msg="initializing source docker://x: '
              b'manifest unknown: \\"1.0\\""\n')
    assert tools.reason(logrus) == 'initializing source docker://x: manifest unknown: "1.0"'
    assert tools.reason(b"first\n\nerror opening file `/x`: No such file\n\n") == \
        "error opening file `/x`: No such file"
    assert tools.reason(b"") == ""


def test_a_missing_tool_names_its_debian_package(monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    with pytest.raises(tools.ToolError, match=r"umoci is not installed \(Debian package umoci\)"):
        tools.binary("umoci")


def test_registry_access_flags():
    plain = RegistryAccess(insecure=frozenset({"127.0.0.1:5000"}), netns="ns1")
    assert plain.source_flags(image_ref.parse("127.0.0.1:5000/a")) == ["--src-tls-verify=false"]
    assert plain.network_prefix() == ["ip", "netns", "exec", "ns1"]
    tls = RegistryAccess(ca_dir=Path("/etc/vxmesh/ca"))
    assert tls.source_flags(image_ref.parse("reg.lab/a")) == ["--src-tls-verify=true",
                                                              "--src-cert-dir=/etc/vxmesh/ca"]
    assert tls.network_prefix() == []


def test_a_store_needs_a_path_skopeo_can_name(tmp_path):
    with pytest.raises(InvalidArgument, match="without ':'"):
        ImageStore(tmp_path / "a:b")
    with pytest.raises(InvalidArgument, match="absolute"):
        ImageStore("relative/store")
