"""The per-host egress bridge (Docker's docker_gwbridge) and its nftables NAT.

Every overlay container gets a second interface on this bridge carrying
its default route; the host masquerades that traffic out of its underlay.
Ports are isolated (see veth.Interface.isolated) and the forward chain
drops bridge-to-bridge traffic, so containers cannot reach each other here,
only through their overlay (Docker's icc=false).

The nftables table is owned entirely by this module and rewritten as one
transaction (add, delete, re-create), so re-applying replaces it
atomically and also removes anything that drifted into it.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from agent.kernel.links import (
    delete_link,
    ensure_only_address,
    get_link,
    link_kind,
    set_mtu_and_up,
)
from agent.kernel.netns import iproute
from agent.names import GWBRIDGE, check_ifname

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
NFT = "nft"


class NftablesError(RuntimeError):
    """nft rejected a ruleset or could not list one."""


@dataclass(frozen=True)
class GwBridgeSpec:
    name: str = GWBRIDGE
    subnet: str = "172.18.0.0/16"
    gateway: str = "172.18.0.1"
    mtu: int = 1500
    table: str = "vxmesh"  # nftables table, family ip

    def __post_init__(self) -> None:
        check_ifname(self.name)
        try:
            network = ipaddress.IPv4Network(self.subnet)
        except ValueError:
            raise ValueError(
                f"subnet {self.subnet!r} is not an IPv4 network"
            ) from None
        try:
            gateway = ipaddress.IPv4Address(self.gateway)
        except ValueError:
            raise ValueError(
                f"gateway {self.gateway!r} is not an IPv4 address"
            ) from None
        if gateway not in network:
            raise ValueError(
                f"gateway {self.gateway} is outside subnet {self.subnet}"
            )
        if not 68 <= self.mtu <= 65535:
            raise ValueError(f"mtu {self.mtu} is not in 68..65535")
        if not self.table or not self.table.replace("_", "").isalnum():
            raise ValueError(f"invalid nftables table name {self.table!r}")

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen


async def ensure_gwbridge(spec: GwBridgeSpec = GwBridgeSpec()) -> None:
    """Bridge up with the gateway address, forwarding on, NAT table in place."""
    async with iproute() as ipr:
        bridge = await get_link(ipr, spec.name)
        if bridge is not None and link_kind(bridge) != "bridge":
            await delete_link(ipr, bridge["index"])
            bridge = None
        if bridge is None:
            await ipr.link("add", ifname=spec.name, kind="bridge", mtu=spec.mtu)
            bridge = await get_link(ipr, spec.name)
        await ensure_only_address(
            ipr, bridge["index"], spec.gateway, spec.prefixlen
        )
        await set_mtu_and_up(ipr, bridge, spec.mtu)
    await asyncio.to_thread(_enable_ip_forward)
    await _nft_apply(nat_ruleset(spec))


async def remove_gwbridge(spec: GwBridgeSpec = GwBridgeSpec()) -> None:
    """Delete the bridge and the nftables table; absent is fine.

    ip_forward is left on: other software on the host may rely on it.
    """
    async with iproute() as ipr:
        bridge = await get_link(ipr, spec.name)
        if bridge is not None:
            await delete_link(ipr, bridge["index"])
    table = _table_ref(spec)
    # "add" first makes the delete valid when the table does not exist.
    await _nft_apply({"nftables": [{"add": table}, {"delete": table}]})


async def read_nat_table(spec: GwBridgeSpec = GwBridgeSpec()) -> list[dict]:
    """The table's chains and rules as nft's JSON objects ([] if absent)."""
    proc = await asyncio.create_subprocess_exec(
        NFT,
        "-j",
        "list",
        "table",
        "ip",
        spec.table,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        if b"No such file or directory" in err:
            return []
        raise NftablesError(
            f"nft list table ip {spec.table} failed: {err.decode().strip()}"
        )
    return [
        obj
        for obj in json.loads(out)["nftables"]
        if "chain" in obj or "rule" in obj
    ]


def nat_ruleset(spec: GwBridgeSpec) -> dict[str, Any]:
    """The full nft JSON transaction that (re)builds the table."""
    family, table = "ip", spec.table
    network = ipaddress.IPv4Network(spec.subnet)

    def chain(name: str, kind: str, hook: str, prio: int) -> dict:
        return {
            "add": {
                "chain": {
                    "family": family,
                    "table": table,
                    "name": name,
                    "type": kind,
                    "hook": hook,
                    "prio": prio,
                    "policy": "accept",
                }
            }
        }

    def rule(chain_name: str, *expr: dict) -> dict:
        return {
            "add": {
                "rule": {
                    "family": family,
                    "table": table,
                    "chain": chain_name,
                    "expr": list(expr),
                }
            }
        }

    def iif(op: str) -> dict:
        return _match(op, {"meta": {"key": "iifname"}}, spec.name)

    def oif(op: str) -> dict:
        return _match(op, {"meta": {"key": "oifname"}}, spec.name)

    return {
        "nftables": [
            {"add": _table_ref(spec)},
            {"delete": _table_ref(spec)},
            {"add": _table_ref(spec)},
            chain("postrouting", "nat", "postrouting", 100),
            rule(
                "postrouting",
                _match(
                    "==",
                    {"payload": {"protocol": "ip", "field": "saddr"}},
                    {
                        "prefix": {
                            "addr": str(network.network_address),
                            "len": network.prefixlen,
                        }
                    },
                ),
                oif("!="),
                {"masquerade": None},
            ),
            chain("forward", "filter", "forward", 0),
            # Egress from containers to anywhere but each other.
            rule("forward", iif("=="), oif("!="), {"accept": None}),
            # Only replies come back in; nothing outside may open
            # connections to the containers through this bridge.
            rule(
                "forward",
                oif("=="),
                _match("in", {"ct": {"key": "state"}}, ["established", "related"]),
                {"accept": None},
            ),
            rule("forward", oif("=="), {"drop": None}),
        ]
    }


def _match(op: str, left: dict, right: Any) -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _table_ref(spec: GwBridgeSpec) -> dict:
    return {"table": {"family": "ip", "name": spec.table}}


async def _nft_apply(ruleset: dict[str, Any]) -> None:
    proc = await asyncio.create_subprocess_exec(
        NFT,
        "-j",
        "-f",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate(json.dumps(ruleset).encode())
    if proc.returncode != 0:
        raise NftablesError(
            f"nft -j -f - failed (exit {proc.returncode}): "
            f"{err.decode().strip()}"
        )


def _enable_ip_forward() -> None:
    # /proc/sys/net is per network namespace: this is the current one's.
    with open(IP_FORWARD, "r+") as f:
        if f.read().strip() != "1":
            f.seek(0)
            f.write("1\n")
