"""What vxmesh-cni asks the agent for a CNI runtime (podman): attach, check, detach.

vxmesh-cni (cli/cni.py) checks the CNI call and forwards it here as one
JSON request on the plug-in socket; the answer is the CNI result, or an
error with its CNI code. Published ports come as runtimeConfig.portMappings
(the conflist declares the capability) and are served as `run -p`'s are,
runtimeConfig.aliases as `--network-alias`'s (the embedded DNS answers them):
reserved in etcd, DNAT'ed by the host's nftables to the endpoint's gwbridge
address. An endpoint is the runtime's container id on one
interface name (CNI's key for an attachment): ADD makes it (the address
from CNI_ARGS IP=, or runtimeConfig "ips", else the next free one; the MAC
from MAC= or runtimeConfig "mac", else derived from the address), joined
to the namespace CNI_NETNS in the runtime's mount namespace; a repeated ADD
returns what the first made; DEL removes it and succeeds when there is
nothing left to remove; CHECK compares it with the runtime's prevResult.
"""
from __future__ import annotations

import logging

from agent import names
from agent.engines.endpoints import EngineEndpoints, EngineError
from agent.engines.http_server import Handler, Peer
from agent.kernel.netns import link_names, netns_exists
from proto import cni
from proto.addresses import prefixlen
from proto.records import ContainerSpec, PortMapping

log = logging.getLogger(__name__)

ENGINE = "cni"


class CniRefusal(EngineError):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.cni_code = code


class CniPlugin:
    def __init__(self, endpoints: EngineEndpoints):
        self.endpoints = endpoints

    def handlers(self) -> dict[str, Handler]:
        return {"/Cni.Add": self.add, "/Cni.Check": self.check, "/Cni.Del": self.delete}

    async def add(self, request: dict, peer: Peer) -> dict:
        call = _call(request)
        network = await self._network(call)
        found = await self._endpoint(call)
        if found is not None and self.endpoints.wired(found.name) == call.netns:
            return {"result": self._result(call, found, network)}   # ADD repeated: the same answer
        if found is not None:
            await self.endpoints.detach(found)   # a half-made one: start again
        runtime = call.config.get("runtimeConfig") or {}
        ips = runtime.get("ips") or []
        ip = call.args.get("IP", "") or (ips[0].split("/")[0] if ips and isinstance(ips[0], str) else "")
        mac = call.args.get("MAC", "") or runtime.get("mac", "") or ""
        ports = _port_mappings(runtime.get("portMappings") or [])
        aliases = _aliases(runtime.get("aliases") or {}, call.config.get("name", ""))
        try:
            spec = await self.endpoints.attach(ENGINE, network.name, ip=ip, mac=mac, engine_id=call.container_id,
                                               ports=ports, aliases=aliases)
        except EngineError as err:
            raise CniRefusal(cni.REFUSED, str(err)) from None
        try:
            spec = await self.endpoints.join(spec, peer.path(call.netns), call.netns, call.ifname,
                                             engine_id=call.container_id)
        except BaseException:
            await self.endpoints.detach(spec)
            raise
        log.info("cni: container %s on %s as %s at %s", call.container_id[:12], network.name,
                 call.ifname, spec.attachments[0].ip)
        return {"result": self._result(call, spec, network)}

    async def check(self, request: dict, peer: Peer) -> dict:
        call = _call(request)
        network = await self._network(call)
        spec = await self._endpoint(call)
        if spec is None:
            raise CniRefusal(cni.UNKNOWN_CONTAINER,
                             f"container {call.container_id} has no {call.ifname} on network {network.name}")
        if self.endpoints.wired(spec.name) != call.netns:
            raise CniRefusal(cni.CHECK_FAILED, f"{call.ifname} of container {call.container_id} is not wired "
                                               f"into {call.netns}")
        netns = names.container_netns(self.endpoints.host, spec.id)
        if not netns_exists(netns) or call.ifname not in await link_names(netns):
            raise CniRefusal(cni.CHECK_FAILED, f"{call.ifname} is missing from {call.netns}")
        previous = call.config.get("prevResult")
        if not isinstance(previous, dict):
            raise CniRefusal(cni.INVALID_CONFIG, "CHECK needs the prevResult of ADD")
        address = f"{spec.attachments[0].ip}/{prefixlen(network.subnet)}"
        if address not in {ip.get("address") for ip in previous.get("ips") or []}:
            raise CniRefusal(cni.CHECK_FAILED, f"prevResult does not hold {address}, the address of "
                                               f"{call.ifname}")
        return {"result": {}}

    async def delete(self, request: dict, peer: Peer) -> dict:
        call = _call(request)
        for spec in await self.endpoints.list():
            if spec.engine == ENGINE and spec.engine_id == call.container_id and \
                    spec.interface in (call.ifname, ""):
                await self.endpoints.detach(spec)
        return {"result": {}}

    async def _network(self, call: cni.Invocation):
        try:
            return await self.endpoints.find_network(call.network)
        except EngineError as err:
            raise CniRefusal(cni.INVALID_CONFIG, f"network {call.network!r}: {err}") from None

    async def _endpoint(self, call: cni.Invocation) -> ContainerSpec | None:
        for spec in await self.endpoints.list():
            if spec.engine == ENGINE and spec.engine_id == call.container_id and spec.interface == call.ifname:
                return spec
        return None

    def _result(self, call: cni.Invocation, spec: ContainerSpec, network) -> dict:
        attachment = spec.attachments[0]
        return cni.result(call.version, call.ifname, attachment.mac, call.netns,
                          f"{attachment.ip}/{prefixlen(network.subnet)}",
                          previous=call.config.get("prevResult"))


def _port_mappings(entries: list) -> tuple[PortMapping, ...]:
    """runtimeConfig.portMappings (the capability): {hostPort, containerPort, protocol}."""
    mappings = []
    for entry in entries if isinstance(entries, list) else [entries]:
        try:
            mappings.append(PortMapping(protocol=str(entry.get("protocol") or "tcp").lower(),
                                        host_port=int(entry.get("hostPort", 0)),
                                        container_port=int(entry["containerPort"])))
        except (AttributeError, KeyError, TypeError, ValueError):
            raise CniRefusal(cni.INVALID_CONFIG, f"invalid portMappings entry {entry!r}: it needs "
                                                 "containerPort, and may give hostPort and protocol") from None
        if entry.get("hostIP") not in (None, "", "0.0.0.0"):
            raise CniRefusal(cni.UNSUPPORTED_FIELD, f"portMappings hostIP {entry['hostIP']!r}: vxmesh "
                                                    "publishes on every address of the host")
    return tuple(mappings)


def _aliases(by_network: dict, name: str) -> tuple[str, ...]:
    """runtimeConfig.aliases (the capability): {CNI network name: [names]}, this network's."""
    names = by_network.get(name, []) if isinstance(by_network, dict) else []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CniRefusal(cni.INVALID_CONFIG, f"invalid aliases for network {name!r}: a list of names")
    return tuple(dict.fromkeys(names))


def _call(request: dict) -> cni.Invocation:
    try:
        config = cni.check_config(request.get("config"))
        environ = {"CNI_COMMAND": request.get("command", ""), "CNI_CONTAINERID": request.get("container_id", ""),
                   "CNI_NETNS": request.get("netns", ""), "CNI_IFNAME": request.get("ifname", ""),
                   "CNI_ARGS": request.get("args", "")}
        return cni.invocation(environ, config)
    except cni.CniError as err:
        raise CniRefusal(err.code, err.msg) from None
