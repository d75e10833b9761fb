"""Running the field's tools: argv in, output or a one-line reason out.

The agent runs skopeo, umoci, crun and conmon (its image store and its
runtime); the controller runs skopeo (copies into and out of the cluster's
registry). Standard library only.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

# Where Debian keeps each tool; the message of a missing one says what to install.
PACKAGES = {"skopeo": "skopeo", "umoci": "umoci", "crun": "crun", "conmon": "conmon",
            "unshare": "util-linux", "ip": "iproute2"}
# Go tools (skopeo, umoci) log as logrus lines: level=fatal msg="what went wrong".
_LOGRUS_MESSAGE = re.compile(r'\bmsg="((?:[^"\\]|\\.)*)"')


class ToolError(Exception):
    """A tool could not run, timed out or failed; the message is one line."""


@dataclass(frozen=True)
class Output:
    returncode: int
    stdout: bytes
    stderr: bytes


def binary(name: str) -> str:
    """The tool's path, or ToolError naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"{name} is not installed (Debian package {PACKAGES.get(name, name)})")
    return path


async def run(argv: list[str], *, timeout: float, check: bool = True,
              stdin: bytes | None = None) -> Output:
    """Run argv to completion; with `check`, a non-zero exit raises ToolError with its reason."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as e:
        raise ToolError(f"cannot run {argv[0]}: {e.strerror}") from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise ToolError(f"{_name(argv)} did not finish in {timeout:g}s") from None
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    result = Output(process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise ToolError(reason(result.stderr) or f"{_name(argv)} exited with status {result.returncode}")
    return result


def reason(stderr: bytes) -> str:
    """The one line that says why a tool failed: a logrus msg, else its last non-empty line."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        match = _LOGRUS_MESSAGE.search(line)
        if match and ("level=fatal" in line or "level=error" in line):
            return match.group(1).replace('\\"', '"')
    return lines[-1] if lines else ""


def _name(argv: list[str]) -> str:
    return " ".join(argv[:2])


def skopeo_cert_dir(directory: Path, ca: Path, cert: Path | None = None, key: Path | None = None) -> Path:
    """A directory as skopeo's --src-cert-dir/--dest-cert-dir reads it: the CA to trust
    (ca.crt) and, when given, the client certificate to present (client.cert and
    client.key), as links to the files, so no key is copied."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, target in {"ca.crt": ca, "client.cert": cert, "client.key": key}.items():
        link = directory / name
        if link.is_symlink() or link.exists():
            link.unlink()
        if target is not None:
            os.symlink(Path(target).resolve(), link)
    return directory
