"""One image in the host's store, as `image ls`/`inspect` show it and a container start needs it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proto.image_config import ImageConfig


@dataclass(frozen=True)
class Image:
    reference: str          # canonical: docker.io/library/busybox:latest
    id: str                 # "sha256:<hex>" of its configuration, as Docker's IMAGE ID
    digest: str             # "sha256:<hex>" of its manifest, as the registry knows it
    config: ImageConfig
    rootfs: Path            # the unpacked image: read-only lower layer of its containers
    size: int               # bytes of its layers as stored

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    def to_dict(self) -> dict:
        return {"reference": self.reference, "id": self.id, "digest": self.digest,
                "config": self.config.to_dict(), "rootfs": str(self.rootfs), "size": self.size}

    @classmethod
    def from_dict(cls, data: dict) -> Image:
        return cls(reference=data["reference"], id=data["id"], digest=data["digest"],
                   config=ImageConfig.from_dict(data["config"]), rootfs=Path(data["rootfs"]),
                   size=int(data["size"]))
