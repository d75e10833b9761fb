"""`make_lab`: builds namespace labs for integration tests and always removes them.

    def test_something(make_lab):
        lab = make_lab(hosts=2)            # controller + 2 agents + ext server
        lab.cli("network", "create", ...)

Each lab gets a random prefix `vxt<4 hex>`, so labs of concurrent tests (and
`make lab`'s own "vxlab") never share a namespace or an agent host name.
"""
from __future__ import annotations

import contextlib
import os
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
def make_lab() -> Iterator[MakeLab]:
    skip_without_root()
    built: list[Lab] = []

    def factory(hosts: int = 3, start_vxmesh: bool = True, underlay_mtu: int = 1500) -> Lab:
        lab = Lab(new_test_prefix(), hosts=hosts, underlay_mtu=underlay_mtu)
        # up() tears down its own half-built lab when it fails, so only a lab
        # that came up is ours to remove.
        lab.up(start_vxmesh=start_vxmesh)
        built.append(lab)
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
def running_lab(hosts: int, **options) -> Iterator[Lab]:
    """A running lab, for a module's tests to share, removed on every way out;
    `options` go to Lab (e.g. etcd_members=1, controllers=2)."""
    skip_without_root()
    with Lab(new_test_prefix(), hosts=hosts, **options) as lab:
        yield lab


@contextlib.contextmanager
def lab_with_blue(hosts: int, **options) -> Iterator[Lab]:
    """A running lab with the overlay network `blue` (10.77.0.0/24)."""
    with running_lab(hosts, **options) as lab:
        lab.cli("network", "create", "--subnet", "10.77.0.0/24", "blue")
        yield lab
