"""Other container engines on vxmesh networks, served by the agent of their host.

One unix socket (agent option plugin-socket, Docker's plug-in directory by
default) speaks HTTP+JSON: Docker's libnetwork remote network driver and
IPAM driver (docker.py) and what vxmesh-cni asks for CNI runtimes such as
podman (cni.py). Both turn an engine's request into an endpoint of
endpoints.py: an address from the controller (the Engines service), the
engine's namespace named here, and a reconcile pass that wires it.
"""
