"""Kernel object names (agent/names.py): they fit the kernel's limits and refuse what could escape."""
from __future__ import annotations

import pytest

from agent import names
from proto import validate


def test_names_fit_the_kernel_limits():
    host = "a" * 63
    validate.host_name(host)
    assert names.overlay_netns(host, 16777215).startswith(names.netns_prefix(host))
    cid = "0123456789abcdef" * 4
    assert names.container_netns("h1", cid) == "vxm-h1-c0123456789ab"
    assert names.overlay_veth(cid, 0) == "ve01234567890"
    assert names.gw_veth(cid) == "gw0123456789"
    assert names.vxlan_ifname(16777215) == "vx16777215"
    for name in (names.overlay_veth(cid, 999), names.gw_veth(cid),
                 names.GWBRIDGE, names.BRIDGE):
        assert len(name) <= 15
    with pytest.raises(ValueError, match="15"):
        names.overlay_veth(cid, 1000)
    for bad in ("", "-h", "h-", "H1", "a" * 64, "h/1", "h_1", "h 1", "h\n1", "h\x001"):
        with pytest.raises(ValueError, match="host name"):
            validate.host_name(bad)
    with pytest.raises(ValueError, match="VNI"):
        names.vxlan_ifname(0)
    with pytest.raises(ValueError, match="container id"):
        names.container_netns("h1", "../etc")
