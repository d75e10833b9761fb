"""The CNI contract vxmesh-cni (cli/cni.py) and the agent (agent/engines/cni.py) share.

CNI (github.com/containernetworking/cni, SPEC.md) runs a plugin executable
with the command and container in environment variables and the network's
configuration as JSON on stdin; the plugin answers with a result or an
error as JSON on stdout. vxmesh speaks spec 1.0.0 and the 0.3.x/0.4.0 results
podman 4 (and other runtimes of that age) ask for. Standard library only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

SPEC_VERSION = "1.0.0"
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")
COMMANDS = ("ADD", "CHECK", "DEL", "VERSION")
PLUGIN_TYPE = "vxmesh-cni"
DEFAULT_SOCKET = "/run/docker/plugins/vxmesh.sock"

# The spec's well-known error codes; 100 and up are the plugin's own.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
REFUSED = 100          # vxmesh said no (a taken address, an unknown network, ...)
CHECK_FAILED = 101     # CHECK found the container's network not as ADD left it

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_dict(self, version: str) -> dict:
        answer = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            answer["details"] = self.details
        return answer


@dataclass(frozen=True)
class Invocation:
    """One call of the plugin: the environment's variables and the stdin configuration."""
    command: str
    container_id: str
    netns: str
    ifname: str
    args: dict[str, str]
    config: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.config.get("cniVersion", SPEC_VERSION)

    @property
    def network(self) -> str:
        """The vxmesh network: the config's "network", else its CNI name."""
        return self.config.get("network") or self.config.get("name", "")

    @property
    def socket(self) -> str:
        return self.config.get("socket") or DEFAULT_SOCKET


def parse_args(text: str) -> dict[str, str]:
    """CNI_ARGS: "K1=V1;K2=V2" (IgnoreUnknown is for the runtime to set, not us to obey)."""
    args: dict[str, str] = {}
    for pair in filter(None, text.split(";")):
        name, sep, value = pair.partition("=")
        if not sep or not _ARG_NAME.fullmatch(name):
            raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_ARGS entry {pair!r}: expected NAME=VALUE")
        args[name] = value
    return args


def check_config(config: object) -> dict:
    """The network configuration: a JSON object with a supported cniVersion and a name."""
    if not isinstance(config, dict):
        raise CniError(DECODE_FAILURE, "the network configuration on stdin is not a JSON object")
    version = config.get("cniVersion")
    if version not in SUPPORTED_VERSIONS:
        raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {version!r} is not supported",
                       f"supported: {', '.join(SUPPORTED_VERSIONS)}")
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise CniError(INVALID_CONFIG, "the network configuration has no name")
    network = config.get("network", "")
    if not isinstance(network, str):
        raise CniError(INVALID_CONFIG, "\"network\" must be the name of a vxmesh network")
    socket = config.get("socket", "")
    if not isinstance(socket, str) or (socket and not socket.startswith("/")):
        raise CniError(INVALID_CONFIG, "\"socket\" must be the absolute path of the agent's plug-in socket")
    return config


def invocation(environ: dict[str, str], config: dict | None) -> Invocation:
    """The call's environment checked for `command` (CNI_COMMAND), as the spec requires it."""
    command = environ.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        raise CniError(INVALID_ENVIRONMENT, f"CNI_COMMAND {command!r} is not one of {', '.join(COMMANDS)}")
    container_id = environ.get("CNI_CONTAINERID", "")
    netns = environ.get("CNI_NETNS", "")
    ifname = environ.get("CNI_IFNAME", "")
    if command != "VERSION":
        if not _ID.fullmatch(container_id):
            raise CniError(INVALID_ENVIRONMENT, f"CNI_CONTAINERID {container_id!r} is missing or invalid")
        if not ifname or len(ifname) > 15 or any(c in ifname for c in "/: \t\n\0") or ifname in (".", ".."):
            raise CniError(INVALID_ENVIRONMENT, f"CNI_IFNAME {ifname!r} is missing or not an interface name")
        if command in ("ADD", "CHECK") and not netns.startswith("/"):
            raise CniError(INVALID_ENVIRONMENT, f"CNI_NETNS {netns!r} is missing or not an absolute path")
    return Invocation(command=command, container_id=container_id, netns=netns, ifname=ifname,
                      args=parse_args(environ.get("CNI_ARGS", "")), config=config or {})


def result(version: str, ifname: str, mac: str, sandbox: str, address: str, gateway: str = "",
           previous: dict | None = None) -> dict:
    """The ADD result in `version`'s shape, this plugin's interface after any a
    previous plugin of the chain reported (prevResult)."""
    previous = previous or {}
    interfaces = list(previous.get("interfaces") or [])
    ips = list(previous.get("ips") or [])
    interfaces.append({"name": ifname, "mac": mac, "sandbox": sandbox})
    ip = {"address": address, "interface": len(interfaces) - 1}
    if gateway:
        ip["gateway"] = gateway
    if version != "1.0.0":   # 0.3.x and 0.4.0 name the family of each address
        ip["version"] = "4"
    ips.append(ip)
    answer = {"cniVersion": version, "interfaces": interfaces, "ips": ips,
              "routes": list(previous.get("routes") or []), "dns": dict(previous.get("dns") or {})}
    return answer


def version_answer(version: str = SPEC_VERSION) -> dict:
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}
