"""Which VNI a new overlay network gets: pure, no I/O.

The store reads which VNIs are taken from etcd, asks this what to pick, and
lets an etcd transaction decide who wins a race. Address rules are shared
with the agent and live in proto/addresses.py; range rules in proto/validate.py.
"""
from __future__ import annotations

from proto.errors import ResourceExhausted
from proto.validate import AUTO_VNI_START, VNI_MAX


def next_free_vni(taken: set[int]) -> int:
    for vni in range(AUTO_VNI_START, VNI_MAX + 1):
        if vni not in taken:
            return vni
    raise ResourceExhausted(f"no free VNI left between {AUTO_VNI_START} and {VNI_MAX}")
