"""Containers as OCI bundles, run by crun under conmon, confined as Docker confines them by default.

runtime.Runtime is the agent's handle; model.ContainerConfig what it runs;
spec.py writes config.json (with confinement.py and seccomp.py);
monitor.py starts conmon; docs/containers.md tells the whole story.
"""
