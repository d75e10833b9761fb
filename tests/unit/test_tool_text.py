"""The text parsers of tests/helpers/tool_text.py against real output of the tools."""
from __future__ import annotations

import pytest

from tests.helpers.tool_text import ping_counts, ping_rtts_ms, ss_addresses_on_port

PING = """\
PING 10.89.0.3 (10.89.0.3) 56(84) bytes of data.
64 bytes from 10.89.0.3: icmp_seq=1 ttl=64 time=0.036 ms
64 bytes from 10.89.0.3: icmp_seq=2 ttl=64 time=1.58 ms
64 bytes from 10.89.0.3: icmp_seq=4 ttl=64 time=12 ms

--- 10.89.0.3 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 40ms
rtt min/avg/max/mdev = 0.036/4.538/12.000/5.300 ms
"""
# busybox's ping, as the busybox image's containers run it.
BUSYBOX_PING = """\
PING 10.77.0.3 (10.77.0.3): 56 data bytes
64 bytes from 10.77.0.3: seq=0 ttl=64 time=0.252 ms
64 bytes from 10.77.0.3: seq=1 ttl=64 time=0.144 ms

--- 10.77.0.3 ping statistics ---
3 packets transmitted, 2 packets received, 33% packet loss
round-trip min/avg/max = 0.144/0.198/0.252 ms
"""


def test_every_reply_time_in_order_and_not_the_summary():
    assert ping_rtts_ms(PING) == [0.036, 1.58, 12.0]
    assert ping_rtts_ms("ping: connect: Network is unreachable\n") == []


def test_transmitted_and_received_from_the_statistics():
    assert ping_counts(PING) == (4, 3)
    assert ping_counts(BUSYBOX_PING) == (3, 2) and ping_rtts_ms(BUSYBOX_PING) == [0.252, 0.144]
    with pytest.raises(ValueError, match="no ping statistics"):
        ping_counts("ping: connect: Network is unreachable\n")


def test_addresses_on_a_port_from_ss_ipv4_and_ipv4_mapped():
    out = ("0      0      10.231.0.2:43314 10.231.0.3:2379\n"
           "0      0      [::ffff:10.231.0.2]:43316 [::ffff:10.231.0.4]:2379\n"
           "0      0      [fd00::2]:50000 [fd00::5]:2379\n"
           "0      0      10.231.0.2:2379 10.231.0.9:52379\n")
    assert ss_addresses_on_port(out, 2379) == {"10.231.0.3", "10.231.0.4", "fd00::5", "10.231.0.2"}
    assert ss_addresses_on_port("", 2379) == set()
