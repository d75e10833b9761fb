"""proto.capabilities: Docker's default set, --cap-add/--cap-drop/--privileged, the CapEff mask."""
from __future__ import annotations

import pytest

from proto import capabilities
from proto.errors import InvalidArgument

DOCKER_DEFAULT_CAPEFF = 0x00000000A80425FB


def test_the_default_set_is_dockers_fourteen_and_reads_as_its_capeff():
    assert len(capabilities.DEFAULT) == 14
    assert capabilities.mask(capabilities.resolve()) == DOCKER_DEFAULT_CAPEFF
    for absent in ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE",
                   "CAP_DAC_READ_SEARCH", "CAP_SYS_TIME", "CAP_BPF"):
        assert absent not in capabilities.resolve()


def test_names_are_accepted_as_docker_accepts_them():
    for spelling in ("net_admin", "NET_ADMIN", "cap_net_admin", "CAP_NET_ADMIN", "Net_Admin"):
        assert capabilities.canonical(spelling) == "CAP_NET_ADMIN"
    assert capabilities.canonical("all") == "ALL"
    for bad in ("", "NET_ADMINS", "CAP_", 3):
        with pytest.raises(InvalidArgument):
            capabilities.canonical(bad)


def test_add_and_drop():
    caps = capabilities.resolve(add=["net_admin"], drop=["chown", "NET_RAW"])
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps and "CAP_NET_RAW" not in caps
    assert len(caps) == 13
    assert caps == sorted(caps, key=capabilities.BITS.__getitem__)  # in bit order


def test_drop_all_keeps_only_what_is_added_and_add_wins_over_drop():
    assert capabilities.resolve(drop=["ALL"]) == []
    assert capabilities.resolve(add=["KILL"], drop=["all"]) == ["CAP_KILL"]
    assert "CAP_KILL" in capabilities.resolve(add=["KILL"], drop=["KILL"])


def test_add_all_and_privileged_grant_every_capability_the_host_holds():
    every = capabilities.resolve(add=["ALL"])
    assert len(every) == len(capabilities.BITS)
    assert capabilities.resolve(privileged=True, drop=["ALL"]) == every
    assert capabilities.mask(capabilities.resolve(privileged=True)) == (1 << 41) - 1
    # A host without CAP_SYS_RESOURCE in its bounding set (as in some sandboxes)
    # or an older kernel cannot pass on what it lacks.
    held = capabilities.from_mask(0x000001FFFEFFFFFF)
    assert "CAP_SYS_RESOURCE" not in held and len(held) == 40
    assert capabilities.resolve(privileged=True, available=held) == held
    assert "CAP_SYS_RESOURCE" not in capabilities.resolve(add=["SYS_RESOURCE"], available=held)
    assert capabilities.resolve(available=held) == capabilities.resolve()
