"""Kernel programming: rtnetlink, nftables, namespaces."""
from agent.kernel import pyroute2_parts

# Before any kernel module imports pyroute2: the agent loads only the parts it uses.
pyroute2_parts.install()
