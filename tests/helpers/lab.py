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
import secrets
import subprocess
import time
from typing import Callable, Iterator

import pytest

from deploy.lab import Lab
from deploy.lab_errors import LabCommandError

MakeLab = Callable[..., Lab]


def new_test_prefix() -> str:
    for _ in range(20):
        prefix = f"vxt{secrets.token_hex(2)}"
        if not Lab(prefix).exists():
            return prefix
    raise RuntimeError("20 random lab prefixes were all taken: clean up with `python -m deploy.lab down`")


@pytest.fixture
def make_lab() -> Iterator[MakeLab]:
    if os.geteuid() != 0:
        pytest.skip("a lab needs root to create network namespaces")
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
def lab_with_blue(hosts: int, **options) -> Iterator[Lab]:
    """A lab with the overlay network `blue` (10.77.0.0/24), for a module's tests to share;
    `options` go to Lab (e.g. etcd_members=1, controllers=2)."""
    lab = Lab(new_test_prefix(), hosts=hosts, **options)
    try:
        lab.up()
        lab.cli("network", "create", "--subnet", "10.77.0.0/24", "blue")
        yield lab
    finally:
        lab.down()


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll `predicate` until it returns something true; return that, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def pings(lab: Lab, source: str, ip: str, controller: int = 1) -> bool:
    """One ping from container `source` to `ip` answered (through the lab CLI)."""
    return lab.cli("exec", source, "--", "ping", "-c", "1", "-W", "1", ip, check=False,
                   controller=controller).returncode == 0


def hosts_up(lab: Lab) -> bool:
    """Every host up in `host ls`; False while the controller cannot answer (e.g. during an etcd election)."""
    try:
        return set(lab.host_states().values()) == {"up"}
    except (LabCommandError, subprocess.TimeoutExpired):
        return False
