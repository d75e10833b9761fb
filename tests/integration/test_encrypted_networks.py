"""`network create --opt encrypted`: refused, naming what the kernel lacks, with etcd untouched."""
from __future__ import annotations

import asyncio
import os
import subprocess

import grpc
import pytest

from cli.commands.networks import parse_opts
from controller.drivers import check_options, driver_for
from controller.drivers import overlay_esp as esp_support
from proto.errors import InvalidArgument
from deploy.lab import Lab
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from tests.helpers.lab import running_lab


def kernel_has_esp() -> bool:
    """Asked independently of esp_support: `ip xfrm` in a throwaway namespace."""
    proc = subprocess.run(
        ["unshare", "--net", "--", "ip", "xfrm", "state", "add", "src", "198.51.100.1",
         "dst", "198.51.100.2", "proto", "esp", "spi", "0x200", "mode", "transport",
         "aead", "rfc4106(gcm(aes))", "0x" + "11" * 20, "128"],
        capture_output=True, text=True, timeout=10)
    return proc.returncode == 0


def wants_encryption(name: str, driver: str, options: dict[str, str]) -> bool:
    return check_options(name, driver_for(driver), options).get("encrypted", False)


def test_options_are_checked_before_anything_else():
    assert wants_encryption("n", "overlay", {"encrypted": ""})
    assert wants_encryption("n", "overlay", {"encrypted": "true"})
    assert not wants_encryption("n", "overlay", {"encrypted": "false"})
    assert not wants_encryption("n", "overlay", {})
    with pytest.raises(InvalidArgument, match="unknown option 'mtu'.*encrypted"):
        wants_encryption("n", "overlay", {"mtu": "1400"})
    with pytest.raises(InvalidArgument, match="encrypted='maybe'"):
        wants_encryption("n", "overlay", {"encrypted": "maybe"})
    with pytest.raises(InvalidArgument, match="only overlay networks.*'bridge'"):
        wants_encryption("n", "bridge", {"encrypted": ""})
    assert parse_opts(["encrypted", "a=b=c"]) == {"encrypted": "", "a": "b=c"}
    with pytest.raises(ValueError, match="'=x'"):
        parse_opts(["=x"])


@pytest.mark.skipif(os.geteuid() != 0, reason="the independent check needs root")
def test_esp_detection_asks_the_kernel(monkeypatch):
    missing = asyncio.run(esp_support.esp_missing())
    assert (missing is None) == kernel_has_esp(), missing
    if missing is not None:
        assert "ESP" in missing and os.uname().release in missing
    # No xfrm at all is named as such.
    monkeypatch.setattr(esp_support, "XFRM_STAT", "/proc/net/no-such-xfrm_stat")
    assert "no xfrm" in asyncio.run(esp_support.esp_missing())


@pytest.fixture(scope="module")
def lab():
    with running_lab(hosts=1, etcd_members=1) as lab:  # a member etcdctl can read
        yield lab


def etcd_dump(lab: Lab) -> str:
    return lab.etcdctl("get", "--prefix", "/vxmesh/").stdout


@pytest.mark.integration
def test_encrypted_overlay_is_refused_by_cli_and_api_and_etcd_is_unchanged(lab):
    before = etcd_dump(lab)
    refused = lab.cli("network", "create", "--subnet", "10.81.0.0/24", "--opt", "encrypted", "sec",
                      check=False)
    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert "'sec'" in refused.stderr
    if kernel_has_esp():
        assert "does not encrypt overlays yet" in refused.stderr
    else:
        assert "IPsec ESP (xfrm)" in refused.stderr and "no ESP support" in refused.stderr

    async def by_api() -> grpc.aio.AioRpcError:
        async with grpc.aio.insecure_channel(f"unix://{lab.controller_socket}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pb_grpc.ControllerStub(channel).CreateNetwork(pb.CreateNetworkRequest(
                    name="sec", subnet="10.81.0.0/24", options={"encrypted": "true"}), timeout=30)
            return err.value
    err = asyncio.run(by_api())
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "ESP" in err.details()

    for args, named in ((("--opt", "mtu=1400"), "'mtu'"),
                        (("--driver", "bridge", "--opt", "encrypted"), "only overlay networks"),
                        (("--opt", "=1"), "'=1'")):
        bad = lab.cli("network", "create", "--subnet", "10.82.0.0/24", *args, "sec2", check=False)
        assert bad.returncode != 0 and named in bad.stderr, bad.stderr

    assert etcd_dump(lab) == before
    assert lab.cli("network", "inspect", "sec", check=False).returncode != 0
    # The same network without the option is created: the refusal was the option's.
    lab.cli("network", "create", "--subnet", "10.81.0.0/24", "sec")
    assert etcd_dump(lab) != before
