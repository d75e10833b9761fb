"""What the runtime is asked to run for a container spec: agent/oci's ContainerConfig.

The spec holds `docker run`'s options as the controller checked and stored
them; the image is this host's copy of the one `run` resolved; the network
namespace is the one the agent prepared (or another container's, or "" for
the host's). Pure: the runtime applies the image's defaults under these
overrides (agent/oci/process.py).
"""
from __future__ import annotations

from agent.images.image import Image
from agent.oci.model import ContainerConfig, Resources, Security
from proto.records import ContainerSpec
from proto.run_options import SECCOMP_DEFAULT


def container_config(spec: ContainerSpec, image: Image, netns_path: str) -> ContainerConfig:
    return ContainerConfig(
        id=spec.id, name=spec.name, image=image, hostname=spec.hostname or spec.name,
        netns_path=netns_path,
        # --entrypoint "" clears the image's; not given, the image's applies.
        entrypoint=tuple(spec.entrypoint) if spec.entrypoint_set else None,
        command=tuple(spec.command) or None,
        env=dict(spec.env), working_dir=spec.working_dir, user=spec.user,
        mounts=tuple(spec.mounts),
        resources=Resources(memory_bytes=spec.memory_bytes, cpus=spec.cpus, pids_limit=spec.pids_limit),
        ulimits=tuple(spec.ulimits), read_only=spec.read_only,
        security=Security(privileged=spec.privileged, cap_add=tuple(spec.cap_add),
                          cap_drop=tuple(spec.cap_drop), seccomp=spec.seccomp or SECCOMP_DEFAULT,
                          seccomp_profile=spec.seccomp_profile,
                          no_new_privileges=not spec.allow_new_privileges),
        open_stdin=spec.open_stdin, tty=spec.tty)
