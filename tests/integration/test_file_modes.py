"""Secrets on disk: what the agent and the controller write for a container is root's alone.

A container's `-e` values are often passwords and tokens. Every file that
holds the container's configuration, environment or output (the agent's
record of it, the runtime's config, its logs; the private etcd's data) is
mode 0600 and every directory above it, up to the agent's state directory
for the host, 0700 (proto/private_files.py). The check is shown to catch a
0644 file in the same tree (the control).
"""
from __future__ import annotations

import secrets

import pytest

from deploy.lab import AGENT_STATE_ROOT
from tests.helpers.file_modes import files_containing, loose_modes
from tests.helpers.images import BUSYBOX
from tests.helpers.lab_cli import inspect
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

# The container's own filesystem (its image's layers, its writable layer, its
# root and the /etc files bound into it) holds no secret of the agent's: its
# processes must pass through it (0755), and the 0700 directory above keeps
# everyone else out.
FILESYSTEM = {"rootfs", "upper", "work", "etc", "images"}


def container_filesystem(path) -> bool:
    return path.name in FILESYSTEM


def test_everything_written_for_a_container_with_env_values_is_0600_in_0700(make_lab):
    lab = make_lab(hosts=1)
    host = lab.hosts[0]
    secret = secrets.token_hex(16)
    lab.cli("run", "-d", "--name", "holder", "--host", host.name, "-e", f"TOKEN={secret}", "-p", "8080:80",
            BUSYBOX, "sh", "-c", 'echo "token is $TOKEN"; exec sleep 3600')
    container_id = inspect(lab, "holder")["id"]
    wait_for(lambda: secret in lab.cli("logs", "holder").stdout, 15, "the container to print its token")

    agent_state = AGENT_STATE_ROOT / host.name
    holding = {str(p.relative_to(agent_state)) for p in files_containing(agent_state, secret.encode())}
    # Where the agent keeps the value: its record, the bundle's config (and crun's
    # copy of it in its state), the container's log.
    assert holding >= {"local/holder.json", f"oci/containers/{container_id}/bundle/config.json",
                       f"oci/crun/{container_id}/config.json", f"oci/containers/{container_id}/container.log"}, holding
    assert loose_modes(agent_state, skip=container_filesystem) == []
    # Containers keep Docker's umask though the agent's is 0077.
    assert lab.cli("exec", "holder", "sh", "-c", "umask").stdout.strip() == "0022"

    # The controller's private etcd keeps the spec too (in its write-ahead log and database).
    etcd_data = lab.state_dir / "etcd"
    assert files_containing(etcd_data, secret.encode()), "the value is not where the test looks for it"
    assert loose_modes(etcd_data) == []
    # No daemon logs it (the lab keeps their logs where the journal would).
    assert files_containing(lab.state_dir / "logs", secret.encode()) == []

    # The control: a file written the way the agent wrote records before (0644) is caught.
    leak = agent_state / "oci" / "containers" / container_id / "leak.json"
    leak.write_text(secret)
    leak.chmod(0o644)
    try:
        assert loose_modes(agent_state, skip=container_filesystem) == [f"0644 {leak}"]
    finally:
        leak.unlink()
