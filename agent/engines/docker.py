"""Docker's libnetwork remote network driver and IPAM driver, on vxmesh networks.

    docker network create -d vxmesh --ipam-driver vxmesh -o vxmesh.network=NAME \
        [--subnet SUBNET] NETNAME

binds the Docker network NETNAME of this host to the vxmesh network NAME
(made with that subnet when it does not exist); the same command on every
host puts their containers on one overlay. What libnetwork asks, in order:

- IpamDriver.RequestPool: the pool is the vxmesh network's subnet (its id too:
  vxmesh's subnets never overlap, so a subnet names one network);
- IpamDriver.RequestAddress: the gateway is the network's; any other address
  is a new endpoint in the controller's IPAM (controller/store/engines.py), so
  no engine and no host ever gets an address twice;
- NetworkDriver.CreateEndpoint: the endpoint with that address gets Docker's
  endpoint id and its MAC, derived from the address as every vxmesh MAC (a
  different --mac-address is refused: port security elsewhere knows the
  derived one);
- NetworkDriver.Join: the sandbox does not exist yet (Docker makes it as the
  container starts), so the reconcile loop makes the veth with its container
  end in this host's namespace, and libnetwork moves it in, renames it eth<N>
  and gives it its address; the sandbox is then named here and the interface
  kept like any container's (agent/engines/endpoints.py), with its way out on
  vxmesh's gwbridge. The answer disables the gateway service, so libnetwork
  never makes its own docker_gwbridge in the host's namespace;
- Leave, DeleteEndpoint: the interface goes, then the endpoint.

Docker's -p reaches the driver with CreateEndpoint (libnetwork's own port
mapping is its bridge driver's): the ports are reserved then, and DNAT'ed
by the agent's nftables to the endpoint's gwbridge address as `run -p`'s.

Nothing is kept here: every answer is worked out from the endpoints the
controller holds for this host, so a restarted agent (or dockerd) carries on.
"""
from __future__ import annotations

import ipaddress
import logging

from agent.engines.endpoints import EngineEndpoints, EngineError
from agent.engines.http_server import Handler, Peer
from proto.addresses import default_gateway, prefixlen
from proto.records import ContainerSpec, PortMapping

log = logging.getLogger(__name__)

ENGINE = "docker"
ADDRESS_SPACE = "vxmesh"
NETWORK_OPTION = "vxmesh.network"
GENERIC = "com.docker.network.generic"
GATEWAY_REQUEST = "com.docker.network.gateway"
MAC_OPTION = "com.docker.network.endpoint.macaddress"
PORTMAP_OPTION = "com.docker.network.portmap"
PROTOCOLS = {6: "tcp", 17: "udp"}
INTERFACE_PREFIX = "eth"


class DockerPlugin:
    def __init__(self, endpoints: EngineEndpoints):
        self.endpoints = endpoints

    def handlers(self) -> dict[str, Handler]:
        empty = self._empty
        return {
            "/Plugin.Activate": self.activate,
            "/NetworkDriver.GetCapabilities": self.capabilities,
            "/NetworkDriver.CreateNetwork": self.create_network,
            "/NetworkDriver.DeleteNetwork": empty,
            "/NetworkDriver.AllocateNetwork": empty,
            "/NetworkDriver.FreeNetwork": empty,
            "/NetworkDriver.CreateEndpoint": self.create_endpoint,
            "/NetworkDriver.EndpointOperInfo": self.endpoint_info,
            "/NetworkDriver.DeleteEndpoint": self.delete_endpoint,
            "/NetworkDriver.Join": self.join,
            "/NetworkDriver.Leave": self.leave,
            "/NetworkDriver.DiscoverNew": empty,
            "/NetworkDriver.DiscoverDelete": empty,
            "/NetworkDriver.ProgramExternalConnectivity": empty,
            "/NetworkDriver.RevokeExternalConnectivity": empty,
            "/IpamDriver.GetCapabilities": self.ipam_capabilities,
            "/IpamDriver.GetDefaultAddressSpaces": self.address_spaces,
            "/IpamDriver.RequestPool": self.request_pool,
            "/IpamDriver.ReleasePool": empty,
            "/IpamDriver.RequestAddress": self.request_address,
            "/IpamDriver.ReleaseAddress": self.release_address,
        }

    async def _empty(self, request: dict, peer: Peer) -> dict:
        return {}

    async def activate(self, request: dict, peer: Peer) -> dict:
        return {"Implements": ["NetworkDriver", "IpamDriver"]}

    async def capabilities(self, request: dict, peer: Peer) -> dict:
        # "local": each dockerd keeps its own network object (no Swarm, no
        # cluster store); the connectivity is the overlay's, across hosts.
        return {"Scope": "local", "ConnectivityScope": "global"}

    # ---- IPAM ------------------------------------------------------------

    async def ipam_capabilities(self, request: dict, peer: Peer) -> dict:
        return {"RequiresMACAddress": False, "RequiresRequestReplay": False}

    async def address_spaces(self, request: dict, peer: Peer) -> dict:
        return {"LocalDefaultAddressSpace": ADDRESS_SPACE, "GlobalDefaultAddressSpace": ADDRESS_SPACE}

    async def request_pool(self, request: dict, peer: Peer) -> dict:
        if request.get("V6"):
            raise EngineError("vxmesh networks are IPv4 only: drop --ipv6")
        if request.get("SubPool"):
            raise EngineError("vxmesh hands out the whole subnet: drop --ip-range")
        name = (request.get("Options") or {}).get(NETWORK_OPTION, "")
        pool = _canonical(request.get("Pool", ""))
        if name:
            network = await self.endpoints.find_network(name, pool)
            if pool and network.subnet != pool:
                raise EngineError(f"vxmesh network {name!r} has subnet {network.subnet}, not {pool}")
            pool = network.subnet
        elif not pool:
            raise EngineError(f"give the vxmesh network's subnet (--subnet) or its name "
                              f"(--ipam-opt {NETWORK_OPTION}=NAME)")
        return {"PoolID": pool, "Pool": pool, "Data": {}}

    async def request_address(self, request: dict, peer: Peer) -> dict:
        pool = request.get("PoolID", "")
        options = request.get("Options") or {}
        wanted = request.get("Address", "")
        if options.get("RequestAddressType") == GATEWAY_REQUEST:
            return {"Address": await self._gateway(pool, wanted), "Data": {}}
        network = await self.endpoints.find_network(subnet=pool)
        spec = await self.endpoints.attach(ENGINE, network.name, ip=wanted, mac=options.get(MAC_OPTION, ""))
        return {"Address": f"{spec.attachments[0].ip}/{prefixlen(network.subnet)}", "Data": {}}

    async def _gateway(self, pool: str, wanted: str) -> str:
        """The network's gateway; a subnet vxmesh does not have yet (the network is made
        by CreateNetwork, which comes next) gets the gateway vxmesh will give it."""
        try:
            network = await self.endpoints.find_network(subnet=pool)
            gateway = network.gateway
        except EngineError as err:
            if "no vxmesh network has subnet" not in str(err):
                raise
            gateway = default_gateway(ipaddress.ip_network(pool))
        if wanted and wanted != gateway:
            raise EngineError(f"the gateway of {pool} on vxmesh is {gateway}, not {wanted}: drop --gateway")
        return f"{gateway}/{prefixlen(pool)}"

    async def release_address(self, request: dict, peer: Peer) -> dict:
        """An address libnetwork reserved but never made an endpoint of (a failed
        create); an endpoint's own address goes with DeleteEndpoint."""
        ip = request.get("Address", "").split("/")[0]
        for spec in await self.endpoints.list():
            if spec.engine == ENGINE and not spec.engine_endpoint and spec.attachments[0].ip == ip:
                await self.endpoints.detach(spec)
        return {}

    # ---- network driver -----------------------------------------------------

    async def create_network(self, request: dict, peer: Peer) -> dict:
        options = request.get("Options") or {}
        name = (options.get(GENERIC) or {}).get(NETWORK_OPTION, "")
        if request.get("IPv6Data"):
            raise EngineError("vxmesh networks are IPv4 only: drop --ipv6")
        ipv4 = request.get("IPv4Data") or []
        if len(ipv4) != 1 or ipv4[0].get("AddressSpace") != ADDRESS_SPACE:
            raise EngineError("a vxmesh network takes its addresses from vxmesh: add --ipam-driver vxmesh")
        pool = _canonical(ipv4[0].get("Pool", ""))
        network = await self.endpoints.find_network(name, pool)
        if network.subnet != pool:
            raise EngineError(f"vxmesh network {network.name!r} has subnet {network.subnet}, not {pool}")
        log.info("docker network %s is vxmesh network %s", request.get("NetworkID", "")[:12], network.name)
        return {}

    async def create_endpoint(self, request: dict, peer: Peer) -> dict:
        interface = request.get("Interface") or {}
        if interface.get("AddressIPv6"):
            raise EngineError("vxmesh networks are IPv4 only")
        ip = (interface.get("Address") or "").split("/")[0]
        spec = await self._by_address(ip)
        mac = spec.attachments[0].mac
        asked = (interface.get("MacAddress") or "").lower()
        if asked and asked != mac:
            raise EngineError(f"vxmesh pins each address's MAC: {ip} has {mac}, not {asked}")
        ports = _published(options_of(request).get(PORTMAP_OPTION) or [])
        await self.endpoints.name(spec, request.get("EndpointID", ""), ports)
        return {"Interface": {"MacAddress": mac}} if not asked else {}

    async def endpoint_info(self, request: dict, peer: Peer) -> dict:
        spec = await self._by_endpoint(request.get("EndpointID", ""))
        value = {} if spec is None else {"vxmesh.endpoint": spec.name, "vxmesh.host": spec.host}
        return {"Value": value}

    async def join(self, request: dict, peer: Peer) -> dict:
        spec = await self._by_endpoint(request.get("EndpointID", ""))
        if spec is None:
            raise EngineError(f"endpoint {request.get('EndpointID', '')[:12]} is not vxmesh's")
        sandbox = request.get("SandboxKey", "")
        if not sandbox.startswith("/"):
            raise EngineError(f"invalid sandbox key {sandbox!r}")
        handed = await self.endpoints.hand_over(spec, sandbox, peer.path(sandbox))
        return {"InterfaceName": {"SrcName": handed, "DstPrefix": INTERFACE_PREFIX},
                "DisableGatewayService": True}

    async def leave(self, request: dict, peer: Peer) -> dict:
        spec = await self._by_endpoint(request.get("EndpointID", ""))
        if spec is not None:
            await self.endpoints.leave(spec)
        return {}

    async def delete_endpoint(self, request: dict, peer: Peer) -> dict:
        spec = await self._by_endpoint(request.get("EndpointID", ""))
        if spec is not None:
            await self.endpoints.detach(spec)
        return {}

    async def _by_address(self, ip: str) -> ContainerSpec:
        for spec in await self.endpoints.list():
            if spec.engine == ENGINE and spec.attachments[0].ip == ip:
                return spec
        raise EngineError(f"address {ip or '(none)'} was not handed out by vxmesh: "
                          "create the Docker network with --ipam-driver vxmesh")

    async def _by_endpoint(self, endpoint_id: str) -> ContainerSpec | None:
        if not endpoint_id:
            raise EngineError("the request names no endpoint")
        for spec in await self.endpoints.list():
            if spec.engine == ENGINE and spec.engine_endpoint == endpoint_id:
                return spec
        return None


def options_of(request: dict) -> dict:
    return request.get("Options") or {}


def _published(portmap: list) -> tuple[PortMapping, ...]:
    """Docker's -p, as libnetwork passes it: {Proto: 6|17, Port, HostIP, HostPort, HostPortEnd}."""
    mappings = []
    for entry in portmap:
        protocol = PROTOCOLS.get(entry.get("Proto"))
        if protocol is None:
            raise EngineError(f"-p {entry}: vxmesh publishes tcp and udp only")
        if entry.get("HostIP") not in (None, "", "0.0.0.0", "::"):
            raise EngineError(f"-p {entry.get('HostIP')}:...: vxmesh publishes on every address of the host")
        if entry.get("HostPortEnd") not in (None, 0, entry.get("HostPort")):
            raise EngineError("-p with a range of host ports: vxmesh publishes one host port per container port")
        mappings.append(PortMapping(protocol=protocol, host_port=int(entry.get("HostPort") or 0),
                                    container_port=int(entry.get("Port") or 0)))
    return tuple(mappings)


def _canonical(pool: str) -> str:
    if not pool:
        return ""
    try:
        return str(ipaddress.ip_network(pool))
    except ValueError:
        raise EngineError(f"invalid subnet {pool!r}") from None
