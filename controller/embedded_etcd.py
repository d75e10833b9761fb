"""A private single-member etcd for a controller started without --etcd.

The controller owns the process: it listens on 127.0.0.1 only, keeps its data
in the given directory (so a restart on the same directory keeps all state)
and is stopped with the controller. Debian's /usr/bin/etcd (3.4) is used.
Given TLS files, it serves clients over https and wants a client certificate
from their CA: the controller's etcd files (etcd-ca, etcd-cert, etcd-key),
so it trusts the etcd CA, as a deployed member does, and no certificate an
agent or admin holds; the controller's etcd client certificate serves both
ends. Its one member's peer port stays plain, on loopback, with no peer to
talk to. The data directory holds every container's spec, environment
included: it is made mode 0700 (proto/private_files.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from pathlib import Path

from controller.etcd import Etcd, EtcdUnavailable
from proto.private_files import private_dir
from transport.tls import TlsFiles


class EmbeddedEtcdError(Exception):
    pass


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedEtcd:
    """``endpoint = await EmbeddedEtcd().start(data_dir)`` ... ``await stop()``,
    or ``async with EmbeddedEtcd(data_dir) as etcd: etcd.endpoint``."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        client_port: int = 0,
        peer_port: int = 0,
        *,
        binary: str = "etcd",
        log_path: Path | None = None,
        ready_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.client_port = client_port
        self.peer_port = peer_port
        self.binary = binary
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.tls = tls
        self.endpoint = ""
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def __aenter__(self) -> EmbeddedEtcd:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(
        self, data_dir: str | Path | None = None, client_port: int | None = None, peer_port: int | None = None
    ) -> str:
        """Start etcd and wait until it serves requests; returns its endpoint."""
        if self._process is not None:
            raise EmbeddedEtcdError(f"embedded etcd is already running (pid {self._process.pid})")
        if data_dir is not None:
            self.data_dir = Path(data_dir)
        if self.data_dir is None:
            raise EmbeddedEtcdError("embedded etcd needs a data directory")
        self.client_port = self.client_port if client_port is None else client_port
        self.peer_port = self.peer_port if peer_port is None else peer_port
        binary = shutil.which(self.binary)
        if binary is None:
            raise EmbeddedEtcdError(f"cannot start the embedded etcd: {self.binary!r} is not installed")
        await asyncio.to_thread(private_dir, self.data_dir)
        log_path = self.log_path or self.data_dir.parent / "etcd.log"
        auto_ports = not (self.client_port and self.peer_port)
        attempts_left = 3
        while True:
            attempts_left -= 1
            client = self.client_port or _free_loopback_port()
            peer = self.peer_port or _free_loopback_port()
            self.endpoint = f"{self._scheme}://127.0.0.1:{client}"
            self._process = await self._spawn(binary, client, peer, log_path)
            try:
                await self._wait_ready(log_path)
                return self.endpoint
            except EmbeddedEtcdError as exc:
                await self.stop()
                # A port we picked can be taken by someone else before etcd binds it.
                if auto_ports and attempts_left and "address already in use" in str(exc):
                    continue
                raise
            except BaseException:
                await self.stop()
                raise

    @property
    def _scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def _command(self, binary: str, client: int, peer: int) -> list[str]:
        client_url = f"{self._scheme}://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        # If the controller is killed outright the kernel sends etcd SIGTERM
        # instead of leaving it orphaned. setpriv (util-linux, always on Debian)
        # sets that up without running Python code between fork and exec,
        # which is unsafe next to gRPC's threads.
        setpriv = shutil.which("setpriv")
        die_with_parent = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        return [
            *die_with_parent,
            binary,
            "--name", "vxmesh",
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", client_url,
            "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url,
            "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"vxmesh={peer_url}",
            "--initial-cluster-state", "new",
            # Keep history bounded; an hour is far longer than agents stay away
            # and resume, and older resumes fall back to a snapshot anyway.
            "--auto-compaction-mode", "periodic",
            "--auto-compaction-retention", "1h",
            # Re-pointing every endpoint of a host with many containers is one transaction.
            "--max-txn-ops", "4096",
            "--logger", "zap",
            "--log-outputs", "stderr",
            *self._tls_flags(),
        ]

    def _tls_flags(self) -> list[str]:
        if self.tls is None:
            return []
        return ["--cert-file", str(self.tls.cert), "--key-file", str(self.tls.key),
                "--client-cert-auth", "--trusted-ca-file", str(self.tls.ca)]

    async def connect(self, timeout: float = 5.0) -> Etcd:
        """A client of this etcd, with the TLS files it was started with."""
        tls = self.tls
        return await Etcd.connect([self.endpoint], timeout=timeout, ca=tls and tls.ca,
                                  cert=tls and tls.cert, key=tls and tls.key)

    async def _spawn(self, binary: str, client: int, peer: int, log_path: Path) -> asyncio.subprocess.Process:
        # ETCD_* variables would silently override our flags.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        log = await asyncio.to_thread(open, log_path, "ab")
        try:
            return await asyncio.create_subprocess_exec(
                *self._command(binary, client, peer),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        finally:
            log.close()  # the child holds its own copy

    async def _wait_ready(self, log_path: Path) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise EmbeddedEtcdError(
                    f"embedded etcd exited with status {self._process.returncode} during startup; "
                    f"end of {log_path}:\n{await _tail(log_path)}"
                )
            try:
                client = await self.connect(timeout=1.0)
            except EtcdUnavailable as exc:
                last_error = str(exc)
                await asyncio.sleep(0.05)
                continue
            await client.close()
            return
        raise EmbeddedEtcdError(
            f"embedded etcd at {self.endpoint} did not answer within {self.ready_timeout:g}s "
            f"({last_error}); end of {log_path}:\n{await _tail(log_path)}"
        )

    async def wait(self) -> int:
        """Until etcd exits by itself (it should not); returns its exit status,
        so the owner can notice that its state store is gone."""
        if self._process is None:
            raise EmbeddedEtcdError("embedded etcd is not running")
        return await self._process.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; always reaps the process."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it may have just exited by itself
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), self.stop_timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
        except asyncio.CancelledError:
            process.kill()  # being cancelled must not leave etcd running
            raise


async def _tail(path: Path, lines: int = 20) -> str:
    def read() -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(cannot read the log: {exc})"

    return await asyncio.to_thread(read)
