"""`make_lab`: builds namespace labs for integration tests and always removes them.

    def test_something(make_lab):
        lab = make_lab(hosts=2)            # controller + 2 agents + registry + ext server
        lab.cli("network", "create", ...)
        lab.cli("run", "-d", "--name", "c1", BUSYBOX, "sleep", "3600")

Each lab gets a random prefix `vxt<4 hex>`, so labs of concurrent tests (and
`make lab`'s own "vxlab") never share a namespace or an agent host name.
Every lab that runs vxmesh gets the session's busybox image loaded into its
registry (`busybox_archive`, tests/helpers/images.py): `make_lab` asks for
it, `running_lab` and `lab_with_blue` are given it by the module's fixture.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from deploy.lab import Lab, unused_prefix

MakeLab = Callable[..., Lab]
TEST_PREFIX = "vxt"


def new_test_prefix() -> str:
    return unused_prefix(TEST_PREFIX)


def skip_without_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("a lab needs root to create network namespaces")


@pytest.fixture
def make_lab(busybox_archive) -> Iterator[MakeLab]:
    skip_without_root()
    built: list[Lab] = []

    def factory(hosts: int = 3, start_vxmesh: bool = True, underlay_mtu: int = 1500) -> Lab:
        lab = Lab(new_test_prefix(), hosts=hosts, underlay_mtu=underlay_mtu)
        # up() tears down its own half-built lab when it fails, so only a lab
        # that came up is ours to remove.
        lab.up(start_vxmesh=start_vxmesh)
        built.append(lab)
        if start_vxmesh:
            lab.load_image(busybox_archive)
        return lab

    try:
        yield factory
    finally:
        failures = []
        for lab in built:
            try:
                lab.down()
            except Exception as exc:  # keep tearing down the others
                failures.append(f"{lab.prefix}: {exc}")
        if failures:
            raise RuntimeError("lab teardown failed: " + "; ".join(failures))


@contextlib.contextmanager
def running_lab(hosts: int, image: Path | None = None, **options) -> Iterator[Lab]:
    """A running lab, for a module's tests to share, removed on every way out,
    with `image` (an archive, e.g. `busybox_archive`) loaded into its registry;
    `options` go to Lab (e.g. etcd_members=1, controllers=2)."""
    skip_without_root()
    with Lab(new_test_prefix(), hosts=hosts, **options) as lab:
        if image is not None:
            lab.load_image(image)
        yield lab


@contextlib.contextmanager
def lab_with_blue(hosts: int, image: Path | None = None, **options) -> Iterator[Lab]:
    """A running lab with the overlay network `blue` (10.77.0.0/24)."""
    with running_lab(hosts, image, **options) as lab:
        lab.cli("network", "create", "--subnet", "10.77.0.0/24", "blue")
        yield lab
