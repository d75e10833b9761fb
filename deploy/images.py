"""A busybox image built on this machine, for the lab's demo and the tests (no public registry needed).

The image is Debian's static busybox with every applet linked where busybox
would install it, a minimal /etc/passwd and /etc/group (root, a non-root
`app` user in a supplementary group, nobody), written by umoci as an OCI
image layout: skopeo copies it to a registry (`push`) or an archive
(`save`), as a user would copy an image they built elsewhere.

    python -m deploy.images build /tmp/busybox-layout      # then: skopeo copy oci:/tmp/busybox-layout:latest ...
    python -m deploy.images archive /tmp/busybox.tar       # then: vxmesh image load -i /tmp/busybox.tar
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
TOOL_TIMEOUT = 120

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
staff:x:50:app
app:x:1000:
nogroup:x:65534:
"""
DIRECTORIES = {"root": 0o700, "tmp": 0o1777, "home/app": 0o755, "var/www": 0o755, "mnt": 0o755,
               "proc": 0o555, "sys": 0o555, "dev": 0o755, "run": 0o755, "etc": 0o755}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageSpec:
    """The image configuration to write: what `run` does when given no overrides."""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ("sh",)
    env: tuple[str, ...] = (f"PATH={DEFAULT_PATH}",)
    working_dir: str = "/"
    user: str = ""
    exposed_ports: tuple[str, ...] = ("80/tcp",)
    labels: dict[str, str] = field(default_factory=lambda: {"org.vxmesh.image": "busybox"})
    # Docker's HEALTHCHECK as its image configuration stores it ({"Test": [...],
    # "Interval": nanoseconds, ...}); None for none. OCI has no such field, so it
    # is written into the configuration after umoci (Docker's images carry it there).
    healthcheck: dict | None = None


class ImageBuildError(Exception):
    """A tool failed while building or copying the image; the message says which and why."""


def build(layout: Path, tag: str = "latest", spec: ImageSpec = ImageSpec()) -> None:
    """Write the busybox image as `layout:tag` (the layout is created if missing, a tag replaced)."""
    if not BUSYBOX.is_file():
        raise ImageBuildError(f"{BUSYBOX} is missing (Debian package busybox-static)")
    layout = Path(layout)
    if not (layout / "index.json").exists():
        _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", f"{layout}:{tag}"])
    with tempfile.TemporaryDirectory(prefix="vxmesh-busybox-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _write_rootfs(rootfs)
        _run(["umoci", "insert", "--image", f"{layout}:{tag}", str(rootfs), "/"])
    config = ["umoci", "config", "--image", f"{layout}:{tag}", "--author", "vxmesh deploy/images.py",
              "--config.workingdir", spec.working_dir, "--config.user", spec.user]
    if spec.entrypoint:
        config += [a for arg in spec.entrypoint for a in ("--config.entrypoint", arg)]
    else:
        config += ["--clear=config.entrypoint"]
    config += [a for arg in spec.cmd for a in ("--config.cmd", arg)]
    config += [a for env in spec.env for a in ("--config.env", env)]
    config += [a for port in spec.exposed_ports for a in ("--config.exposedports", port)]
    config += [a for key, value in spec.labels.items() for a in ("--config.label", f"{key}={value}")]
    _run(config)
    if spec.healthcheck is not None:
        _edit_config(layout, tag, lambda document: document.setdefault("config", {}).update(
            Healthcheck=spec.healthcheck))


def _edit_config(layout: Path, tag: str, edit) -> None:
    """Change `layout:tag`'s image configuration in place: `edit` changes its JSON; the
    configuration and manifest blobs are written anew and the index points at them."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    entry = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.loads(_blob(layout, entry["digest"]).read_bytes())
    document = json.loads(_blob(layout, manifest["config"]["digest"]).read_bytes())
    edit(document)
    manifest["config"].update(_write_blob(layout, json.dumps(document).encode()))
    entry.update(_write_blob(layout, json.dumps(manifest).encode()))
    index_path.write_text(json.dumps(index))


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _write_blob(layout: Path, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(layout, digest).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def push(layout: Path, tag: str, destination: str, *, cert_dir: Path | None = None,
         tls_verify: bool = True, netns: str = "") -> None:
    """Copy `layout:tag` to a registry: `destination` is HOST[:PORT]/NAME[:TAG]."""
    flags = [f"--dest-tls-verify={'true' if tls_verify else 'false'}"]
    if cert_dir is not None:
        flags.append(f"--dest-cert-dir={cert_dir}")
    prefix = ["ip", "netns", "exec", netns] if netns else []
    _run([*prefix, "skopeo", "copy", "--quiet", *flags, f"oci:{layout}:{tag}",
          f"docker://{destination}"])


def save(layout: Path, tag: str, archive: Path, reference: str = "") -> None:
    """Write `layout:tag` as an archive: a `docker save` tarball when `reference` names it, else OCI."""
    target = f"docker-archive:{archive}:{reference}" if reference else f"oci-archive:{archive}"
    _run(["skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", target])


def busybox_archive(archive: Path, reference: str = "busybox:latest", spec: ImageSpec = ImageSpec()) -> Path:
    """The busybox image as a `docker save` tarball naming it `reference`: what
    `vxmesh image load` takes, as a user's own images would come."""
    with tempfile.TemporaryDirectory(prefix="vxmesh-busybox-layout-") as tmp:
        layout = Path(tmp) / "layout"
        build(layout, spec=spec)
        save(layout, "latest", archive, reference)
    return archive


def _write_rootfs(rootfs: Path) -> None:
    for directory, mode in DIRECTORIES.items():
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
        (rootfs / directory).chmod(mode)
    applets = _run([str(BUSYBOX), "--list-full"]).split()
    (rootfs / "bin").mkdir(exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in applets:
        link = rootfs / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    (rootfs / "var" / "www" / "index.html").write_text("hello from the vxmesh busybox image\n")


def _run(argv: Sequence[str]) -> str:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except FileNotFoundError:
        raise ImageBuildError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise ImageBuildError(f"{' '.join(argv[:3])} did not finish in {TOOL_TIMEOUT}s") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise ImageBuildError(f"{' '.join(argv[:3])} failed: {lines[-1] if lines else result.returncode}")
    return result.stdout


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.images", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "archive"])
    parser.add_argument("path", type=Path, help="the OCI layout to write (build), the tarball (archive)")
    parser.add_argument("--tag", default="latest")
    args = parser.parse_args(argv)
    if args.command == "archive":
        busybox_archive(args.path.resolve(), f"busybox:{args.tag}")
        print(args.path)
    else:
        build(args.path.resolve(), args.tag)
        print(f"{args.path}:{args.tag}")


if __name__ == "__main__":
    main()
