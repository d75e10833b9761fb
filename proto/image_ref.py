"""Image references as Docker reads them: `[registry[:port]/]name[:tag][@digest]`.

The CLI parses what a user typed, the agent parses what a container spec
stores, and both must agree on what `busybox` means: here it means
`docker.io/library/busybox:latest`, as in Docker. The rules:

- the first `/`-separated part names a registry when it contains `.` or `:`
  or is `localhost` (`localhost:5000/a/b`, `registry.lab/x`); otherwise the
  registry is Docker Hub, `docker.io`, and a one-part name gets `library/`;
- the repository path is lowercase: parts of `[a-z0-9]` runs joined by
  `.`, `_`, `__` or dashes, at most 255 characters with the registry;
- the tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, `latest` when neither tag nor
  digest is given (a digest alone pins the image, and then no tag is added);
- the digest is `sha256:` + 64 hex digits (or sha384/sha512 with theirs).

Standard library only: the CLI checks references before any daemon sees them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from proto.errors import InvalidArgument

DEFAULT_REGISTRY = "docker.io"
# Docker's own aliases for Docker Hub, all stored as DEFAULT_REGISTRY.
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN_LABEL = re.compile(r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalised reference; `str()` is the one canonical spelling."""
    registry: str          # "docker.io", "localhost:5000", "10.0.0.2:5000", "[::1]:5000"
    repository: str        # "library/busybox", "team/app"
    tag: str = ""          # "" only when a digest pins the image
    digest: str = ""       # "sha256:<64 hex>" or ""

    @property
    def name(self) -> str:
        """Registry and repository: what a registry stores tags under."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The short form Docker shows: `busybox:latest`, `team/app:1`, `localhost:5000/x:y`."""
        name = self.name
        if self.registry == DEFAULT_REGISTRY:
            name = self.repository.removeprefix(OFFICIAL_PREFIX) \
                if self.repository.count("/") == 1 else self.repository
        text = name + (f":{self.tag}" if self.tag else "")
        return text + (f"@{self.digest}" if self.digest else "")

    @property
    def pull_source(self) -> str:
        """What a registry is asked for: the digest when there is one (it wins over a tag, as in Docker)."""
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


def parse(text: object) -> ImageRef:
    """Parse and normalise `text`; InvalidArgument names the reference and what is wrong with it."""
    if not isinstance(text, str):
        raise InvalidArgument(f"invalid image reference {text!r}: it must be a string")
    if not text:
        raise InvalidArgument("invalid image reference '': it is empty")
    if any(c.isspace() for c in text):
        raise InvalidArgument(f"invalid image reference {text!r}: it contains white space")

    def bad(reason: str) -> InvalidArgument:
        return InvalidArgument(f"invalid image reference {text!r}: {reason}")

    remainder, _, digest = text.partition("@")
    if "@" in text:
        digest = _digest(digest, bad)
    registry, path = _split_registry(remainder, bad)
    tag = ""
    # A ':' after the last '/' starts the tag; one before it belonged to the registry's port.
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise bad(f"tag {tag!r} must be 1 to 128 letters, digits, '_', '.' or '-', "
                      "not starting with '.' or '-'")
    if not path:
        raise bad("the repository name is empty")
    if path != path.lower():
        raise bad("the repository name must be lowercase")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise bad(f"repository name component {component!r} must be lowercase letters and "
                      "digits, separated by '.', '_', '__' or '-'")
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if len(registry) + 1 + len(path) > NAME_MAX:
        raise bad(f"the name is longer than {NAME_MAX} characters")
    if not tag and not digest:
        tag = DEFAULT_TAG
    return ImageRef(registry, path, tag, digest)


def _split_registry(remainder: str, bad) -> tuple[str, str]:
    first, sep, rest = remainder.partition("/")
    if not sep or not ("." in first or ":" in first or first == "localhost"):
        return DEFAULT_REGISTRY, remainder
    host, port = first, ""
    if first.startswith("["):
        end = first.find("]")
        if end < 0:
            raise bad(f"registry {first!r} has an unclosed '['")
        host, port = first[:end + 1], first[end + 1:].removeprefix(":")
        if first[end + 1:] and not first[end + 1:].startswith(":"):
            raise bad(f"registry {first!r}: only ':PORT' may follow ']'")
        if not re.fullmatch(r"\[[0-9a-fA-F:.]+\]", host):
            raise bad(f"registry {first!r} is not an IPv6 address in brackets")
    elif ":" in first:
        host, _, port = first.partition(":")
    if ":" in first and not (port.isdigit() and 0 < int(port) <= 65535):
        raise bad(f"registry port {port!r} must be a number between 1 and 65535")
    if not host.startswith("["):
        labels = host.split(".")
        if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
            raise bad(f"registry host {host!r} must be dot-separated letters, digits and "
                      "inner '-'")
    registry = first
    if registry in _HUB_ALIASES:
        registry = DEFAULT_REGISTRY
    return registry, rest


def _digest(digest: str, bad) -> str:
    algorithm, sep, hex_part = digest.partition(":")
    if not sep:
        raise bad(f"digest {digest!r} must be ALGORITHM:HEX, e.g. sha256:<64 hex digits>")
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        raise bad(f"digest algorithm {algorithm!r} is not one of "
                  f"{', '.join(_DIGEST_HEX_LENGTH)}")
    if len(hex_part) != length or not re.fullmatch(r"[0-9a-f]+", hex_part):
        raise bad(f"a {algorithm} digest must be {length} lowercase hex digits")
    return digest
