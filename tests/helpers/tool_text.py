"""What tools that print only text say, each fact read by one small function.

Everywhere else tests and benchmarks read structured output (`ip -j`,
`bridge -j`, `nft -j`, `iperf3 -J`, the daemons' JSON timing events, the
CLI's `--format json`). `ping` and `ss` have no such form, so their lines
are parsed here, and tests/unit/test_tool_text.py pins each parser to real
output of the tool.
"""
from __future__ import annotations

import ipaddress
import re

PING_REPLY_TIME = re.compile(r"\btime=([\d.]+) ms\b")
# iputils' "4 packets transmitted, 3 received", busybox's "4 packets transmitted, 3 packets received".
PING_SUMMARY = re.compile(r"^(\d+) packets transmitted, (\d+) (?:packets )?received", re.MULTILINE)


def ping_rtts_ms(output: str) -> list[float]:
    """The round-trip time of every reply `ping -n` printed, in milliseconds, in order."""
    return [float(ms) for ms in PING_REPLY_TIME.findall(output)]


def ping_counts(output: str) -> tuple[int, int]:
    """(transmitted, received) from ping's statistics (iputils' or busybox's, which
    containers run); ValueError if it printed none."""
    match = PING_SUMMARY.search(output)
    if match is None:
        raise ValueError(f"no ping statistics in {output[-300:]!r}")
    return int(match[1]), int(match[2])


def ss_addresses_on_port(output: str, port: int) -> set[str]:
    """The addresses `ss -Hn` shows with `port` (local or peer), IPv4-mapped ones as IPv4."""
    found = set()
    for token in output.split():
        host, _, token_port = token.rpartition(":")
        if token_port != str(port) or not host:
            continue
        address = ipaddress.ip_address(host.strip("[]"))
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        found.add(str(address))
    return found
