"""A private etcd per test module, and a Store on a fresh key prefix per test.

The etcd is Debian's binary run by controller/embedded_etcd.py on loopback,
its data in a temporary directory removed afterwards.
"""
from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
import pytest_asyncio

from controller.embedded_etcd import EmbeddedEtcd
from controller.etcd import Etcd
from controller.store import Store


@pytest.fixture(scope="module")
def work_dir():
    path = Path(tempfile.mkdtemp(prefix="vxmesh-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def etcd_server(work_dir):
    server = EmbeddedEtcd(work_dir / "shared" / "data")
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def etcd(etcd_server):
    client = await Etcd.connect([etcd_server.endpoint])
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def prefix():
    return f"/vxmesh-test-{secrets.token_hex(4)}/"


@pytest.fixture
def store(etcd, prefix):
    return Store(etcd, prefix)


async def snapshot(etcd: Etcd, prefix: str):
    return await etcd.get_prefix(prefix)
