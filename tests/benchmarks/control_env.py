"""A private control plane for the benchmarks: etcd, an image registry and a controller process.

etcd is Debian's binary on loopback (controller/embedded_etcd.py), the
registry Debian's docker-registry on a loopback port with the busybox image
in it (`run` resolves every image there), the controller is `vxmesh
controller` in its own process, as deployed, listening on a unix socket only. Both live in one temporary directory (vxbench-*)
that is removed, with the processes, when the context ends, also on failure.
The controller runs in its own process so its CPU time and RSS can be read
from /proc, apart from the benchmark's own.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import grpc

from controller.embedded_etcd import EmbeddedEtcd
from controller.etcd import Etcd
from deploy import images
from proto import cluster_registry, image_ref
from proto import vxmesh_pb2_grpc as pb_grpc
from tests.helpers.controller_ready import wait_healthy
from tests.helpers.images import BUSYBOX
from tests.helpers.registry import running_registry

READY_SECONDS = 60.0
# The deployed default (deploy/config/controller.toml), so lease renewals cost what they cost there.
HOST_TTL = 6


class ControlPlane:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="vxbench-"))
        self.socket = f"unix://{self.work}/controller.sock"
        self.etcd_server = EmbeddedEtcd(self.work / "etcd", log_path=self.work / "etcd.log")
        self.etcd: Etcd | None = None
        self.controller: asyncio.subprocess.Process | None = None
        self.channel: grpc.aio.Channel | None = None
        self.api: pb_grpc.ControllerStub | None = None
        self._registry = contextlib.ExitStack()

    async def __aenter__(self) -> ControlPlane:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _start(self) -> None:
        endpoint = await self.etcd_server.start()
        self.etcd = await Etcd.connect([endpoint])
        registry = await asyncio.to_thread(self._start_registry)
        log = open(self.work / "controller.log", "wb")
        try:
            # VXBENCH_PROFILE=FILE runs the controller under cProfile, its stats written to FILE on exit.
            profile = os.environ.get("VXBENCH_PROFILE")
            # `vxmesh controller` execs `python -m controller`, which would leave
            # the profiler behind: under it the daemon's module is run directly.
            command = ["-m", "cProfile", "-o", profile, "-m", "controller"] if profile else ["-m", "cli.main", "controller"]
            self.controller = await asyncio.create_subprocess_exec(
                sys.executable, *command, "--listen", self.socket,
                "--etcd", endpoint, "--host-ttl", str(HOST_TTL), "--registry", registry,
                # Plain text on a private unix socket: the benchmarks measure the control plane, not TLS.
                "--insecure",
                stdout=log, stderr=log,
                env={**os.environ, "VXMESH_LOG": "INFO" if os.environ.get("VXBENCH_CONTROLLER_LOG") else "WARNING"})
        finally:
            log.close()
        self.channel = grpc.aio.insecure_channel(self.socket, options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024)])
        self.api = pb_grpc.ControllerStub(self.channel)
        await self._wait_healthy()

    def _start_registry(self) -> str:
        """A plain-HTTP registry (the controller runs --insecure) holding busybox; its HOST:PORT."""
        registry = self._registry.enter_context(running_registry(own_namespace=False))
        layout = self.work / "busybox"
        images.build(layout)
        location = cluster_registry.location(image_ref.parse(BUSYBOX), registry.host)
        registry.push(layout, "latest", f"{location.repository}:latest")
        return registry.host

    async def _wait_healthy(self) -> None:
        def running() -> None:
            if self.controller.returncode is not None:
                raise RuntimeError(f"the benchmark controller exited ({self.controller.returncode}): "
                                   f"{self.controller_log()[-2000:]}")
        if await wait_healthy(self.api, READY_SECONDS, running):
            return
        raise RuntimeError(f"the benchmark controller was not healthy within {READY_SECONDS:.0f} s: "
                           f"{self.controller_log()[-2000:]}")

    def controller_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.work / "controller.log").read_text(errors="replace")
        return ""

    @property
    def controller_pid(self) -> int:
        return self.controller.pid

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        if self.controller is not None and self.controller.returncode is None:
            self.controller.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.controller.wait(), 10)
            except asyncio.TimeoutError:
                self.controller.kill()
                await self.controller.wait()
        if self.etcd is not None:
            await self.etcd.close()
        await self.etcd_server.stop()
        self._registry.close()
        # VXBENCH_CONTROLLER_LOG=FILE: the controller logged at INFO, kept in FILE.
        if os.environ.get("VXBENCH_CONTROLLER_LOG"):
            shutil.copyfile(self.work / "controller.log", os.environ["VXBENCH_CONTROLLER_LOG"])
        shutil.rmtree(self.work, ignore_errors=True)
