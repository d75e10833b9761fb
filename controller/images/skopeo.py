"""Copies into and out of the cluster's registry, by skopeo: archives, other registries.

skopeo does what a registry copy needs and Python should not redo: every
archive format, layer compression, manifest conversion, Docker Hub's token
dance, credentials (the controller host's `skopeo login`). The cluster's
registry is reached with the cluster CA and the controller's certificate
(`tls`: links to them in a directory made for each copy, as skopeo's
--cert-dir reads it, so a killed controller leaves none behind), or plain
HTTP for an insecure cluster; any other registry with the host's own CAs.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from proto import tools
from proto.errors import ImageError
from proto.image_ref import ImageRef
from proto.tools import ToolError, skopeo_cert_dir

COPY_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Skopeo:
    registry: str                            # HOST:PORT of the cluster's registry
    tls: tuple[Path, Path, Path] | None      # its CA, our certificate and key; None: plain HTTP

    async def copy(self, source: str, destination: ImageRef, what: str,
                   source_ref: ImageRef | None = None) -> None:
        """Copy `source` (a skopeo transport:reference) to `destination` in a registry;
        `source_ref`: the registry image read, when the source is one. ImageError names `what`."""
        with tempfile.TemporaryDirectory(prefix="vxmesh-skopeo-") as work:
            certs = skopeo_cert_dir(Path(work) / "certs", *self.tls) if self.tls else None
            flags = self._flags("dest", destination, certs)
            if source_ref is not None:
                flags = self._flags("src", source_ref, certs) + flags
            argv = [tools.binary("skopeo"), "--command-timeout", f"{int(COPY_TIMEOUT)}s", "copy", "--quiet",
                    *flags, source, f"docker://{destination}"]
            try:
                await tools.run(argv, timeout=COPY_TIMEOUT + 30)
            except ToolError as e:
                raise ImageError(f"{what}: {e}") from None

    def _flags(self, side: str, ref: ImageRef, certs: Path | None) -> list[str]:
        if ref.registry != self.registry:
            return [f"--{side}-tls-verify=true"]
        if certs is None:
            return [f"--{side}-tls-verify=false"]
        return [f"--{side}-tls-verify=true", f"--{side}-cert-dir={certs}"]
