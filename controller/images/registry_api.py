"""The OCI distribution API of the cluster's registry, the few calls no tool makes for us.

Manifests (read, deleted, written back under another tag), configuration
blobs, the catalog and tag lists: plain HTTPS requests, with the cluster CA
and the controller's certificate (the registry asks for a client
certificate from the cluster CA), or plain HTTP for an insecure cluster.
Every digest is checked on the way in. urllib is synchronous: every call
runs in a thread.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SINGLE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
TIMEOUT = 30.0
PAGE = 1000
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryError(Exception):
    """The registry refused, or answered what cannot be an image; one line, naming it."""


class RegistryUnreachable(RegistryError):
    """The registry did not answer (down, wrong address, TLS refused)."""


@dataclass(frozen=True)
class Manifest:
    digest: str             # sha256 of `body`: the image's digest in this registry
    media_type: str
    body: bytes             # as stored, to write back unchanged under another tag
    config_digest: str      # the image id
    layers_size: int        # bytes of its layers as stored


class RegistryApi:
    def __init__(self, address: str, context: ssl.SSLContext | None, timeout: float = TIMEOUT):
        """`context`: TLS with the CA to trust and the certificate to present; None: plain HTTP."""
        self.address = address
        self.context = context
        self.timeout = timeout
        self._base = f"{'https' if context else 'http'}://{address}"

    async def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The single-platform manifest `reference` (a tag or digest) names, or None if none."""
        found = await asyncio.to_thread(self._request, "GET", f"/v2/{repository}/manifests/{reference}",
                                        {"Accept": ", ".join((*SINGLE_MANIFESTS, OCI_INDEX, DOCKER_LIST))})
        if found is None:
            return None
        headers, body = found
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"registry {self.address}: manifest {repository}@{reference} does not "
                                f"match its digest")
        document = _json(body, f"manifest {repository}:{reference}")
        media_type = document.get("mediaType") or headers.get("Content-Type", "").split(";")[0]
        if media_type not in SINGLE_MANIFESTS:
            raise RegistryError(f"{repository}:{reference} is a {media_type or 'manifest of unknown type'}, "
                                "not a single-platform image manifest")
        config = document.get("config") or {}
        return Manifest(digest, media_type, body, str(config.get("digest", "")),
                        sum(int(layer.get("size", 0)) for layer in document.get("layers") or []))

    async def blob(self, repository: str, digest: str) -> bytes:
        found = await asyncio.to_thread(self._request, "GET", f"/v2/{repository}/blobs/{digest}")
        if found is None:
            raise RegistryError(f"registry {self.address}: blob {digest} of {repository} is missing")
        body = found[1]
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(f"registry {self.address}: blob {digest} of {repository} does not "
                                "match its digest")
        return body

    async def config(self, repository: str, manifest: Manifest) -> Any:
        """The image configuration a manifest names, decoded."""
        return _json(await self.blob(repository, manifest.config_digest), f"configuration of {repository}")

    async def repositories(self) -> list[str]:
        """Every repository in the registry (the catalog, page by page)."""
        found: list[str] = []
        path: str | None = f"/v2/_catalog?n={PAGE}"
        while path is not None:
            page = await asyncio.to_thread(self._request, "GET", path)
            if page is None:
                break
            headers, body = page
            found += _json(body, "the catalog").get("repositories") or []
            following = _NEXT.search(headers.get("Link", ""))
            path = following.group(1) if following else None
        return found

    async def tags(self, repository: str) -> list[str]:
        found = await asyncio.to_thread(self._request, "GET", f"/v2/{repository}/tags/list")
        if found is None:
            return []
        return sorted(_json(found[1], f"the tags of {repository}").get("tags") or [])

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete the manifest and with it every tag of the repository that points to it."""
        if await asyncio.to_thread(self._request, "DELETE", f"/v2/{repository}/manifests/{digest}") is None:
            raise RegistryError(f"registry {self.address}: {repository}@{digest} is already gone")

    async def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> None:
        await asyncio.to_thread(self._request, "PUT", f"/v2/{repository}/manifests/{tag}",
                                {"Content-Type": manifest.media_type}, manifest.body)

    def _request(self, method: str, path: str, headers: dict[str, str] | None = None,
                 body: bytes | None = None) -> tuple[Any, bytes] | None:
        """(headers, body) of a successful answer; None for 404; RegistryError otherwise."""
        request = urllib.request.Request(self._base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as answer:
                return answer.headers, answer.read()
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise RegistryError(f"registry {self.address}: {method} {path.split('?')[0]}: "
                                f"{_reason(err, method)}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise RegistryUnreachable(f"cannot reach the image registry {self.address}: {reason}") from None


def _reason(err: urllib.error.HTTPError, method: str) -> str:
    """The registry's own message (its errors JSON), else the HTTP status."""
    try:
        errors = json.loads(err.read()).get("errors") or []
        text = "; ".join(f"{e.get('message') or e.get('code')}" for e in errors)
    except (ValueError, AttributeError, OSError):
        text = ""
    if err.code == 405 and method == "DELETE":
        text = "deleting is switched off in the registry's config (storage: delete: enabled: true)"
    return text or f"HTTP {err.code} {err.reason}"


def _json(body: bytes, what: str) -> Any:
    try:
        document = json.loads(body)
    except ValueError as e:
        raise RegistryError(f"{what} is not JSON: {e}") from None
    if not isinstance(document, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return document
