"""Running `nft`, in this network namespace or in a named one.

Every nftables table vxmesh keeps is written as one JSON transaction
(`nft -j -f -`) and read back as JSON. A table in another network namespace
(an overlay network's) is programmed by running nft there with
`nsenter --net`: only the network namespace is entered, so the command sees
the same files as the agent.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from agent.kernel.netns import netns_path

NFT = "nft"
NSENTER = "nsenter"


class NftablesError(RuntimeError):
    """nft rejected a ruleset or could not list one."""


def absent(err: NftablesError) -> bool:
    """Whether nft failed because what it was asked to list does not exist."""
    return "No such file or directory" in str(err)


async def run_nft(args: list[str], stdin: bytes | None = None, netns: str | None = None) -> bytes:
    """nft ARGS (in `netns`, None: this namespace); its output, NftablesError on failure."""
    argv = [NFT, *args] if netns is None else [NSENTER, f"--net={netns_path(netns)}", NFT, *args]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        where = "" if netns is None else f" in {netns}"
        raise NftablesError(
            f"nft {' '.join(args)}{where} failed (exit {proc.returncode}): {err.decode().strip()}"
        )
    return out


async def apply(objects: list[dict[str, Any]], netns: str | None = None) -> None:
    """Run one transaction of nft JSON commands: all of them or, on any error, none."""
    await run_nft(["-j", "-f", "-"], json.dumps({"nftables": objects}).encode(), netns)


async def listing(args: list[str], netns: str | None = None) -> list[dict[str, Any]] | None:
    """`nft -j list ARGS` as nft's JSON objects, or None when the object does not exist."""
    try:
        out = await run_nft(["-j", "list", *args], netns=netns)
    except NftablesError as err:
        if absent(err):
            return None
        raise
    return json.loads(out)["nftables"]
