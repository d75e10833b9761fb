"""Test images: busybox, built once per session (deploy/images.py).

`busybox_layout`: an OCI layout with two flavours, for the image store and
runtime tests:
  latest  Cmd ["sh"], WorkingDir /, PATH only: a plain busybox
  entry   Entrypoint ["echo", "entry:"], Cmd ["default-arg"], WorkingDir /srv/work
          (missing from the image: created at start, as Docker does), User app,
          Env GREETING=hello, StopSignal-free

`busybox_archive`: busybox:latest as a `docker save` tarball, which every
lab that runs containers loads into its registry with `vxmesh image load`
(tests/helpers/lab.py); its containers then run `BUSYBOX`.

`checked_archive`: `CHECKED`, busybox with a HEALTHCHECK in its configuration
(as Docker writes one): healthy while /tmp/sick does not exist, checked every
300 ms, unhealthy after 2 failures; its Cmd serves httpd on port 80.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import images

# What lab tests run: docker.io/library/busybox:latest, from the lab's registry.
BUSYBOX = "busybox"
CHECKED = "checked"
SICK_FILE = "/tmp/sick"
CHECKED_SPEC = images.ImageSpec(
    cmd=("httpd", "-f", "-p", "80", "-h", "/var/www"),
    healthcheck={"Test": ["CMD-SHELL", f"test ! -e {SICK_FILE}"], "Interval": 300_000_000,
                 "Timeout": 2_000_000_000, "Retries": 2})

ENTRY_SPEC = images.ImageSpec(
    entrypoint=("echo", "entry:"), cmd=("default-arg",), working_dir="/srv/work", user="app",
    env=(f"PATH={images.DEFAULT_PATH}", "GREETING=hello"), exposed_ports=("8080/tcp", "53/udp"))


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory) -> Iterator[Path]:
    """An OCI layout holding busybox:latest and busybox:entry."""
    directory = tmp_path_factory.mktemp("busybox")
    layout = directory / "layout"
    images.build(layout, "latest")
    images.build(layout, "entry", ENTRY_SPEC)
    yield layout
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory) -> Iterator[Path]:
    """busybox:latest as a `docker save` tarball, built once for every lab of the session."""
    directory = tmp_path_factory.mktemp("busybox-archive")
    yield images.busybox_archive(directory / "busybox.tar")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def checked_archive(tmp_path_factory) -> Iterator[Path]:
    """`CHECKED` (busybox with a HEALTHCHECK) as a `docker save` tarball."""
    directory = tmp_path_factory.mktemp("checked-archive")
    yield images.busybox_archive(directory / "checked.tar", f"{CHECKED}:latest", CHECKED_SPEC)
    shutil.rmtree(directory, ignore_errors=True)
