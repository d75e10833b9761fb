"""vxmesh-cni against the CNI spec, driven as a runtime drives it: environment, stdin, stdout, exit code.

No engine: the harness is the runtime. It makes the container's network
namespace itself (`<lab>-cni<N>`, removed with the lab), runs the installed
`vxmesh-cni` with CNI_* variables and a network configuration on stdin
against a real lab agent, and checks the JSON result or error and what the
kernel and the controller then hold: every command (ADD, CHECK, DEL,
VERSION), both result shapes (1.0.0 and 0.4.0), prevResult, static IP and
MAC from CNI_ARGS, idempotent DEL, and each error case with its code.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proto import cni
from tests.helpers import lab_cli
from tests.helpers.lab import lab_with_blue
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

VXMESH_CNI = str(Path(sys.executable).parent / "vxmesh-cni")


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=2, image=busybox_archive) as lab:
        lab_cli.run(lab, "native", 1)
        yield lab


class Runtime:
    """What a CNI runtime does: namespaces for its containers, and calls of the plugin."""

    def __init__(self, lab):
        self.lab = lab
        self.host = lab.hosts[0]
        self.count = 0
        self.processes: dict[str, subprocess.Popen] = {}

    def netns(self) -> str:
        """A container's namespace, with its process (the lab's removal kills it)."""
        self.count += 1
        name = f"{self.lab.prefix}-cni{self.count}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        self.processes[name] = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "3600"])
        return name

    def crash(self, name: str) -> None:
        """The container and its namespace gone, and no DEL: a runtime that died."""
        self.processes.pop(name).kill()
        subprocess.run(["ip", "netns", "del", name], check=True)

    def config(self, version: str = "1.0.0", **extra) -> dict:
        return {"cniVersion": version, "name": "blue", "type": "vxmesh-cni",
                "socket": str(self.lab.plugin_socket(self.host)), **extra}

    def call(self, command: str, config: dict | str | None, container: str = "c1", netns: str | None = None,
             ifname: str = "eth0", args: str = "", environ: dict | None = None) -> tuple[int, dict | None]:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_CONTAINERID": container,
               "CNI_IFNAME": ifname, "CNI_PATH": str(Path(VXMESH_CNI).parent)}
        if netns is not None:
            env["CNI_NETNS"] = f"/run/netns/{netns}"
        if args:
            env["CNI_ARGS"] = args
        env.update(environ or {})
        stdin = config if isinstance(config, str) else json.dumps(config) if config is not None else ""
        # The runtime runs it in the host's network namespace, as podman does.
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.host.netns}", VXMESH_CNI], input=stdin,
                              capture_output=True, text=True, env=env, timeout=120)
        out = proc.stdout.strip()
        return proc.returncode, json.loads(out) if out else None


@pytest.fixture(scope="module")
def runtime(lab):
    """One for the module: its namespaces are numbered across tests, and go with the lab."""
    runtime = Runtime(lab)
    yield runtime
    for process in runtime.processes.values():
        process.kill()
        process.wait()


def addresses(netns: str, ifname: str = "eth0") -> list[str]:
    out = subprocess.run(["ip", "-n", netns, "-j", "addr", "show", "dev", ifname], capture_output=True, text=True)
    if out.returncode != 0:
        return []
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out.stdout) for a in link["addr_info"]
            if a["family"] == "inet"]


def mac_of(netns: str, ifname: str = "eth0") -> str:
    return json.loads(subprocess.run(["ip", "-n", netns, "-j", "link", "show", "dev", ifname],
                                     capture_output=True, text=True, check=True).stdout)[0]["address"]


def endpoints(lab) -> dict[str, dict]:
    return {e["ip"]: e for e in lab_cli.network(lab)["endpoints"]}


def pings(netns: str, ip: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", ip],
                          capture_output=True).returncode == 0


def test_version_lists_the_supported_versions(runtime):
    code, answer = runtime.call("VERSION", {"cniVersion": "1.0.0"})
    assert code == 0
    assert answer == {"cniVersion": "1.0.0", "supportedVersions": list(cni.SUPPORTED_VERSIONS)}
    code, answer = runtime.call("VERSION", None)   # stdin may be empty
    assert code == 0 and "0.4.0" in answer["supportedVersions"]


def test_add_check_del_in_the_1_0_0_shape(lab, runtime):
    netns = runtime.netns()
    code, result = runtime.call("ADD", runtime.config(), container="spec100", netns=netns)
    assert code == 0, result
    assert result["cniVersion"] == "1.0.0"
    (interface,) = result["interfaces"]
    assert interface == {"name": "eth0", "mac": interface["mac"], "sandbox": f"/run/netns/{netns}"}
    (ip,) = result["ips"]
    assert ip["interface"] == 0 and "version" not in ip and ip["address"].endswith("/24")
    # the kernel holds what the result says, and the overlay reaches the native container on h2
    assert addresses(netns) == [ip["address"]]
    assert mac_of(netns) == interface["mac"]
    address = ip["address"].split("/")[0]
    assert endpoints(lab)[address]["engine"] == "cni"
    native = lab_cli.inspect(lab, "native")["networks"]["blue"]["ip"]
    wait_for(lambda: pings(netns, native), 10, f"{netns} pings the native container at {native}")
    listed = {c["name"]: c for c in lab_cli.containers(lab)}
    (mine,) = [c for c in listed.values() if c.get("engine_id") == "spec100"]
    assert mine["engine"] == "cni" and mine["state"] == "running"

    # ADD again: the same answer, nothing new made
    code, again = runtime.call("ADD", runtime.config(), container="spec100", netns=netns)
    assert code == 0 and again == result
    assert len([e for e in endpoints(lab).values() if e["engine"] == "cni"]) == 1

    # CHECK compares with prevResult
    assert runtime.call("CHECK", runtime.config(prevResult=result), container="spec100", netns=netns) == (0, None)
    wrong = json.loads(json.dumps(result))
    wrong["ips"][0]["address"] = "10.77.0.250/24"
    code, error = runtime.call("CHECK", runtime.config(prevResult=wrong), container="spec100", netns=netns)
    assert (code, error["code"]) == (1, cni.CHECK_FAILED) and "prevResult" in error["msg"]
    code, error = runtime.call("CHECK", runtime.config(), container="spec100", netns=netns)
    assert (code, error["code"]) == (1, cni.INVALID_CONFIG) and "prevResult" in error["msg"]
    code, error = runtime.call("CHECK", runtime.config(prevResult=result), container="other", netns=netns)
    assert (code, error["code"]) == (1, cni.UNKNOWN_CONTAINER)

    # DEL: gone from the namespace, the controller and the agent's namespace names; DEL again is fine
    assert runtime.call("DEL", runtime.config(prevResult=result), container="spec100", netns=netns) == (0, None)
    assert addresses(netns) == []
    assert address not in endpoints(lab)
    # h1 runs no container of its own: no namespace name of the agent's is left there
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith(f"vxm-{runtime.host.name}-c")]
    assert runtime.call("DEL", runtime.config(), container="spec100", netns=netns) == (0, None)
    # DEL with the namespace already gone, and without CNI_NETNS at all, as the spec allows
    subprocess.run(["ip", "netns", "del", netns], check=True)
    assert runtime.call("DEL", runtime.config(), container="spec100", netns=netns) == (0, None)
    assert runtime.call("DEL", runtime.config(), container="spec100") == (0, None)


def test_static_ip_and_mac_from_cni_args_in_the_0_4_0_shape(lab, runtime):
    netns = runtime.netns()
    code, result = runtime.call("ADD", runtime.config("0.4.0"), container="spec040", netns=netns,
                                args="IgnoreUnknown=1;IP=10.77.0.77;MAC=02:00:00:aa:bb:cc")
    assert code == 0, result
    assert result["cniVersion"] == "0.4.0"
    assert result["ips"] == [{"address": "10.77.0.77/24", "interface": 0, "version": "4"}]
    assert result["interfaces"][0]["mac"] == "02:00:00:aa:bb:cc"
    assert addresses(netns) == ["10.77.0.77/24"] and mac_of(netns) == "02:00:00:aa:bb:cc"
    assert endpoints(lab)["10.77.0.77"]["mac"] == "02:00:00:aa:bb:cc"

    # the address is taken now: a second container asking for it is refused, and nothing is left of it
    other = runtime.netns()
    before = set(endpoints(lab))
    code, error = runtime.call("ADD", runtime.config("0.4.0"), container="thief", netns=other, args="IP=10.77.0.77")
    assert (code, error["code"], error["cniVersion"]) == (1, cni.REFUSED, "0.4.0")
    assert "10.77.0.77" in error["msg"] and "already in use" in error["msg"]
    assert set(endpoints(lab)) == before and addresses(other) == []
    assert runtime.call("DEL", runtime.config("0.4.0"), container="spec040", netns=netns) == (0, None)


def test_prev_result_of_an_earlier_plugin_is_kept(runtime):
    netns = runtime.netns()
    earlier = {"cniVersion": "1.0.0", "interfaces": [{"name": "dummy0"}],
               "ips": [{"address": "192.0.2.5/24", "interface": 0}], "dns": {"nameservers": ["192.0.2.53"]}}
    code, result = runtime.call("ADD", runtime.config(prevResult=earlier), container="chained", netns=netns)
    assert code == 0, result
    assert result["interfaces"][0] == {"name": "dummy0"} and result["interfaces"][1]["name"] == "eth0"
    assert result["ips"][0] == earlier["ips"][0] and result["ips"][1]["interface"] == 1
    assert result["dns"] == earlier["dns"]
    assert runtime.call("DEL", runtime.config(), container="chained", netns=netns) == (0, None)


@pytest.mark.parametrize("case", [
    "bad json", "old version", "no name", "unknown network", "no netns", "no container id", "bad command",
    "missing namespace", "bad args", "no agent", "relative socket"])
def test_errors_carry_their_cni_code(lab, runtime, case):
    netns = runtime.netns()
    before = set(endpoints(lab))
    config, kwargs, code = runtime.config(), {"netns": netns}, None
    if case == "bad json":
        config, code = "{not json", cni.DECODE_FAILURE
    elif case == "old version":
        config, code = runtime.config("0.1.0"), cni.INCOMPATIBLE_VERSION
    elif case == "no name":
        config, code = {k: v for k, v in runtime.config().items() if k != "name"}, cni.INVALID_CONFIG
    elif case == "unknown network":
        config, code = runtime.config(network="nosuch"), cni.INVALID_CONFIG
    elif case == "no netns":
        kwargs, code = {}, cni.INVALID_ENVIRONMENT
    elif case == "no container id":
        kwargs, code = {"netns": netns, "container": ""}, cni.INVALID_ENVIRONMENT
    elif case == "bad command":
        kwargs, code = {"netns": netns, "environ": {"CNI_COMMAND": "FROB"}}, cni.INVALID_ENVIRONMENT
    elif case == "missing namespace":
        kwargs, code = {"netns": f"{lab.prefix}-nosuchns"}, cni.REFUSED
    elif case == "bad args":
        kwargs, code = {"netns": netns, "args": "IP"}, cni.INVALID_ENVIRONMENT
    elif case == "no agent":
        config, code = runtime.config(socket=f"/run/vxmesh-lab/{lab.prefix}/nosuch.sock"), cni.TRY_AGAIN_LATER
    elif case == "relative socket":
        config, code = runtime.config(socket="agent.sock"), cni.INVALID_CONFIG
    status, error = runtime.call("ADD", config, container=kwargs.pop("container", f"err{runtime.count}"), **kwargs)
    assert status == 1, error
    assert error["code"] == code, error
    assert error["msg"] and error["cniVersion"] in cni.SUPPORTED_VERSIONS
    assert set(endpoints(lab)) == before
    assert addresses(netns) == []


def test_an_endpoint_its_runtime_forgot_is_reclaimed(lab, runtime):
    """A runtime that dies between ADD and DEL: once no process is left in the
    container's namespace, the agent removes the endpoint, rows and address."""
    netns = runtime.netns()
    code, result = runtime.call("ADD", runtime.config(), container="forgotten", netns=netns)
    assert code == 0, result
    address = result["ips"][0]["address"].split("/")[0]
    assert address in endpoints(lab)
    runtime.crash(netns)
    wait_for(lambda: address not in endpoints(lab), 60, f"the forgotten endpoint at {address} reclaimed")
    # its address is free again the moment it left the network: endpoint, address
    # and record went in one transaction, so the first ADD asking for it gets it
    again = runtime.netns()
    code, result = runtime.call("ADD", runtime.config(), container="heir", netns=again, args=f"IP={address}")
    assert code == 0, result
    assert runtime.call("DEL", runtime.config(), container="heir", netns=again) == (0, None)
