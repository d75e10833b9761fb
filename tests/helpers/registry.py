"""A throwaway image registry for tests: Debian's docker-registry in a network namespace of its own.

It listens on 127.0.0.1:5000 inside the namespace (named vxg<hex>), so it
needs no address anywhere else; whatever talks to it runs in that namespace
too (`RegistryAccess.netns`, `ip netns exec`). Plain HTTP, or TLS with a
test CA made by cli.pki (`ca_dir` then holds ca.crt, as skopeo reads it),
or the CA of a `cli.pki` directory the test has (`pki`). For a daemon the
test runs in its own process, `own_namespace=False` puts the registry on a
free loopback port of the test's namespace instead. The namespace, the
process and the registry's storage go afterwards.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.images.registry import RegistryAccess
from cli import pki
from deploy import images

ADDRESS = "127.0.0.1:5000"
START_TIMEOUT = 15.0

needs_registry = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("docker-registry") is None,
    reason="needs root and Debian's docker-registry")


@dataclass(frozen=True)
class Registry:
    netns: str
    host: str                   # what references name it by: 127.0.0.1:5000
    ca_dir: Path | None         # the CA to trust, when it speaks TLS

    def access(self) -> RegistryAccess:
        """How an image store on this machine reaches it."""
        if self.ca_dir is None:
            return RegistryAccess(insecure=frozenset({self.host}), netns=self.netns)
        return RegistryAccess(ca_dir=self.ca_dir, netns=self.netns)

    def push(self, layout: Path, tag: str, name: str) -> str:
        """Copy `layout:tag` here as NAME (repository[:tag]); return its reference."""
        reference = f"{self.host}/{name}"
        images.push(layout, tag, reference, cert_dir=self.ca_dir, tls_verify=self.ca_dir is not None,
                    netns=self.netns)
        return reference


@contextlib.contextmanager
def running_registry(*, tls: bool = False, pki_dir: Path | None = None,
                     own_namespace: bool = True) -> Iterator[Registry]:
    """Start a registry in a fresh namespace; stop it and remove everything it had afterwards."""
    netns = f"vxg{secrets.token_hex(3)}" if own_namespace else ""
    address = ADDRESS if own_namespace else f"127.0.0.1:{_free_port()}"
    work = Path(tempfile.mkdtemp(prefix="vxmesh-registry-"))
    if netns:
        subprocess.run(["ip", "netns", "add", netns], check=True)
    process = None
    try:
        if netns:
            subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        tls_dir = (pki_dir or work / "tls") if tls or pki_dir else None
        ca_dir = _make_certs(work, tls_dir) if tls_dir else None
        config = work / "config.yml"
        config.write_text(_config(work / "data", address, tls_dir))
        log = open(work / "registry.log", "wb")
        prefix = ["ip", "netns", "exec", netns] if netns else []
        process = subprocess.Popen([*prefix, "docker-registry", "serve", str(config)], stdout=log, stderr=log,
                                   stdin=subprocess.DEVNULL)
        log.close()
        _wait_listening(work / "registry.log", process)
        yield Registry(netns, address, ca_dir)
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if netns:
            for pid in subprocess.run(["ip", "netns", "pids", netns], capture_output=True,
                                      text=True).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "delete", netns], check=False)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def registry() -> Iterator[Registry]:
    """A plain-HTTP registry on loopback in its own namespace."""
    with running_registry() as started:
        yield started


@pytest.fixture
def tls_registry() -> Iterator[Registry]:
    """A registry that speaks TLS with a certificate from a test CA."""
    with running_registry(tls=True) as started:
        yield started


def _make_certs(work: Path, tls: Path) -> Path:
    if not (tls / pki.CA_FILE).exists():
        pki.init_ca(tls)
    # A server certificate for 127.0.0.1 (the controller role's SANs include it).
    pki.issue(tls, "controller", "registry", ips=["127.0.0.1"], if_missing=True)
    ca_dir = work / "ca"
    ca_dir.mkdir()
    shutil.copy(tls / pki.CA_FILE, ca_dir / "ca.crt")
    return ca_dir


def _config(data: Path, address: str, tls_dir: Path | None) -> str:
    tls = ""
    if tls_dir is not None:
        held = pki.files(tls_dir, "controller", "registry")
        tls = f"  tls:\n    certificate: {held.cert}\n    key: {held.key}\n"
    return ("version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {address}\n{tls}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_listening(log: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "listening on" in text:
            return
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {process.returncode}: {text[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not listen within {START_TIMEOUT}s: {log.read_text()[-2000:]}")
