"""End to end: images through the lab's registry, containers from them, and nothing left behind.

A 2-host lab; the session's busybox tarball is loaded with `vxmesh image
load` as a user would load a `docker save` tarball. Each test uses its own
container names and image tags.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent.oci.cgroups import HostCgroups
from deploy import images
from deploy.lab import AGENT_STATE_ROOT, Lab
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import containers, inspect, pings, run
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

PAGE = "hello from the vxmesh busybox image\n"   # the image's /var/www/index.html


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=2, image=busybox_archive) as lab:
        yield lab


def refused(lab: Lab, *args: str) -> str:
    """The one-line error of a command that must fail."""
    result = lab.cli(*args, check=False)
    # `run` fails as Docker's does, with 125; every other command with 1.
    assert result.returncode == (125 if args[0] == "run" else 1), f"{args} was accepted: {result.stdout}"
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def image_list(lab: Lab) -> dict[str, dict]:
    return {i["RepoTags"][0]: i for i in json.loads(lab.cli("images", "--format", "json").stdout)}


def store_references(lab: Lab, host: int) -> set[str]:
    """What a host's image store holds: the references it pulled (agent/images/store.py)."""
    refs = AGENT_STATE_ROOT / lab.hosts[host].name / "images" / "refs"
    return {json.loads(p.read_text())["reference"] for p in refs.glob("*.json")} if refs.is_dir() else set()


def test_busybox_from_the_registry_runs_on_both_hosts_and_they_talk(lab):
    listed = lab.cli("image", "ls").stdout.splitlines()
    assert listed[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert listed[1].split()[:2] == ["busybox", "latest"]
    assert "busybox:latest" in image_list(lab)
    web1 = run(lab, "img-web1", 0, "blue", "httpd", "-f", "-p", "80", "-h", "/var/www")
    web2 = run(lab, "img-web2", 1, "blue", "httpd", "-f", "-p", "80", "-h", "/var/www")
    assert (web1["image"], web2["image"]) == ("busybox:latest", "busybox:latest")
    assert web1["image_digest"] == image_list(lab)["busybox:latest"]["RepoDigests"][0].split("@")[1]
    ip1, ip2 = web1["networks"]["blue"]["ip"], web2["networks"]["blue"]["ip"]
    assert pings(lab, "img-web1", ip2) and pings(lab, "img-web2", ip1)
    for source, address in (("img-web1", ip2), ("img-web2", ip1)):
        page = wait_for(lambda: lab.cli("exec", source, "--", "wget", "-qO-", f"http://{address}/",
                                        check=False).stdout, what=f"{source} to fetch from {address}")
        assert page == PAGE
    # The image says it exposes 80/tcp: ps shows it as Docker does, unpublished.
    row = next(line for line in lab.cli("ps").stdout.splitlines() if "img-web1" in line)
    assert "busybox:latest" in row and "80/tcp" in row
    assert inspect(lab, "img-web1")["exposed_ports"] == ["80/tcp"]
    # Each host pulled exactly that image into its store.
    pinned = f"docker.io/library/busybox:latest@{web1['image_digest']}"
    assert pinned in store_references(lab, 0) and pinned in store_references(lab, 1)


def test_a_missing_image_is_one_line_and_leaves_no_container(lab):
    message = refused(lab, "run", "-d", "--name", "img-missing", "--host", lab.hosts[0].name, "busybox:nope")
    assert "busybox:nope" in message and "not in the cluster's registry" in message
    assert "img-missing" not in {c["name"] for c in containers(lab)}
    assert "not found" in refused(lab, "inspect", "img-missing")


def test_the_images_defaults_and_the_run_options_over_them(lab):
    # busybox's Cmd is `sh`, its WorkingDir /; -u, -w, -e, --entrypoint override them.
    run(lab, "img-defaults", 0, "blue", "sh", "-c", "id -un; pwd; echo $PATH; sleep 3600")
    wait_for(lambda: "/bin" in lab.cli("logs", "img-defaults").stdout, what="the defaults' log")
    who, where, path = lab.cli("logs", "img-defaults").stdout.splitlines()
    assert (who, where) == ("root", "/") and "/usr/bin" in path
    lab.cli("run", "-d", "--name", "img-over", "--host", lab.hosts[0].name, "-u", "app", "-w", "/srv/made",
            "-e", "GREETING=hi", "--entrypoint", "sh", BUSYBOX, "-c", "id -un; pwd; echo $GREETING")
    wait_for(lambda: inspect(lab, "img-over")["state"] == "exited", what="img-over to end")
    assert lab.cli("logs", "img-over").stdout == "app\n/srv/made\nhi\n"
    over = inspect(lab, "img-over")
    assert (over["exit_code"], over["entrypoint"], over["user"], over["working_dir"]) == (0, ["sh"], "app", "/srv/made")
    # An empty --entrypoint clears the image's; the command runs alone.
    lab.cli("run", "-d", "--name", "img-noentry", "--host", lab.hosts[0].name, "--entrypoint", "", BUSYBOX,
            "echo", "plain")
    wait_for(lambda: lab.cli("logs", "img-noentry").stdout == "plain\n", what="the command alone")
    # An unknown user fails the start, naming it.
    assert "nosuchuser" in refused(lab, "run", "--name", "img-nouser", "--host", lab.hosts[0].name,
                                   "-u", "nosuchuser", BUSYBOX, "true")
    for name in ("img-defaults", "img-over", "img-noentry", "img-nouser"):
        lab.cli("rm", "-f", name)


def test_exit_codes_logs_and_a_restart_keep_the_containers_layer(lab):
    lab.cli("run", "-d", "--name", "img-exit", "--host", lab.hosts[1].name, BUSYBOX, "sh", "-c",
            "echo run >> /counted; cat /counted | wc -l; echo to-stderr >&2; exit 7")
    wait_for(lambda: inspect(lab, "img-exit")["state"] == "exited", what="img-exit to end")
    assert inspect(lab, "img-exit")["exit_code"] == 7
    assert lab.cli("logs", "img-exit").stdout == "1\nto-stderr\n"
    lab.cli("start", "img-exit")
    wait_for(lambda: lab.cli("logs", "img-exit").stdout.count("to-stderr") == 2, what="the second run")
    assert lab.cli("logs", "img-exit").stdout == "1\nto-stderr\n2\nto-stderr\n"   # same writable layer
    lab.cli("rm", "img-exit")


def test_image_load_of_an_oci_archive_inspect_and_rm(lab, tmp_path):
    layout = tmp_path / "layout"
    images.build(layout, "latest")
    archive = tmp_path / "busybox-oci.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:latest",
                    f"oci-archive:{archive}:docker.io/library/busybox:oci"], check=True)
    assert lab.load_image(archive) == "Loaded image: busybox:oci\n"
    # The same image once more, as a `docker save` tarball under another tag.
    images.save(layout, "latest", tmp_path / "busybox-docker.tar", "busybox:oci2")
    assert lab.load_image(tmp_path / "busybox-docker.tar") == "Loaded image: busybox:oci2\n"
    listed = image_list(lab)
    assert listed["busybox:oci"]["Id"] == listed["busybox:oci2"]["Id"]
    [detail] = json.loads(lab.cli("image", "inspect", "busybox:oci").stdout)
    assert detail["Config"]["Cmd"] == ["sh"] and detail["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert "Healthcheck" not in detail["Config"]            # Docker leaves it out: the image has none
    assert detail["Reference"] == "docker.io/library/busybox:oci" and detail["Os"] == "linux"
    # By id: both names of the image.
    by_id = json.loads(lab.cli("image", "inspect", detail["Id"].removeprefix("sha256:")[:12]).stdout)
    assert sorted(i["RepoTags"][0] for i in by_id) == ["busybox:oci", "busybox:oci2"]
    # Removing one name of an image another name keeps only untags it; the last one deletes it.
    assert lab.cli("image", "rm", "busybox:oci").stdout == "Untagged: busybox:oci\n"
    assert "busybox:oci" not in image_list(lab) and "busybox:oci2" in image_list(lab)
    assert lab.cli("image", "rm", "busybox:oci2").stdout == f"Untagged: busybox:oci2\nDeleted: {detail['Id']}\n"
    assert "no such image: busybox:oci" in refused(lab, "image", "inspect", "busybox:oci")


def test_an_image_in_use_is_kept_and_a_removed_one_cannot_run(lab, tmp_path):
    archive = images.busybox_archive(tmp_path / "mine.tar", "team/mine:1")
    assert lab.load_image(archive) == "Loaded image: team/mine:1\n"
    lab.cli("run", "-d", "--name", "img-mine", "--host", lab.hosts[0].name, "team/mine:1", "sleep", "3600")
    assert "container 'img-mine' uses it" in refused(lab, "image", "rm", "team/mine:1")
    lab.cli("rm", "-f", "img-mine")
    removed = lab.cli("image", "rm", "team/mine:1").stdout.splitlines()
    assert removed[0] == "Untagged: team/mine:1" and removed[1].startswith("Deleted: sha256:")
    assert "team/mine:1" not in image_list(lab)
    assert "not in the cluster's registry" in refused(lab, "run", "--name", "img-gone", "team/mine:1")


def test_pull_and_push_copy_between_registries(lab, tmp_path):
    # Another registry: the lab's own, under a name outside vxmesh's images, written the way
    # a build machine would write it (skopeo, with a certificate of the cluster).
    outside = f"{lab.registry}/outside/bb:1"
    layout = tmp_path / "layout"
    images.build(layout, "latest")
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").symlink_to(lab.tls_dir / "ca.pem")
    (certs / "client.cert").symlink_to(lab.tls_dir / "admin.pem")
    (certs / "client.key").symlink_to(lab.tls_dir / "admin-key.pem")
    images.push(layout, "latest", outside, cert_dir=certs, netns=lab.ctl_ns)
    assert "no such image" in refused(lab, "image", "push", outside)      # not one of the cluster's yet
    pulled = lab.cli("image", "pull", outside).stdout.splitlines()
    assert pulled[-1] == outside and pulled[0].startswith("Digest: sha256:")
    assert outside in image_list(lab)
    lab.cli("run", "-d", "--name", "img-pulled", "--host", lab.hosts[1].name, outside, "true")
    wait_for(lambda: inspect(lab, "img-pulled")["state"] == "exited", what="the pulled image to run")
    lab.cli("rm", "img-pulled")
    pushed = f"{lab.registry}/outside/bb:2"
    assert lab.cli("image", "push", outside).stdout.endswith(f"Pushed {outside}\n")
    assert "no such image" in refused(lab, "image", "push", pushed)
    lab.cli("image", "rm", outside)
    assert "cannot pull image" in refused(lab, "image", "pull", f"{lab.registry}/outside/bb:404")


def test_rm_leaves_no_bundle_layer_cgroup_state_or_image_behind(lab):
    host = lab.hosts[1]
    info = run(lab, "img-last", 1, "blue")
    assert "img-web2" in {c["name"] for c in containers(lab)}   # still uses busybox on this host
    lab.cli("rm", "-f", "img-last")
    for name in [c["name"] for c in containers(lab) if c["host"] == host.name]:
        lab.cli("rm", "-f", name)
    state = AGENT_STATE_ROOT / host.name
    assert not list((state / "oci" / "containers").iterdir())
    assert not list((state / "oci" / "crun").glob(f"{info['id']}*"))
    parent = f"vxmesh-{host.name}"
    cgroups = HostCgroups.detect()
    assert not cgroups.container_ids(parent) and not [h for h in cgroups.hierarchies if (h / parent).exists()]
    # The host's image store keeps only what its containers use: now nothing.
    wait_for(lambda: store_references(lab, 1) == set(), what="the unused image to leave h2's store")
    assert not list((state / "images" / "rootfs").iterdir())
    # No overlay root is left in any mount namespace.
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and info["id"] in _mountinfo(p)]


def _mountinfo(pid: Path) -> str:
    try:
        return (pid / "mountinfo").read_text()
    except OSError:
        return ""


def test_a_host_that_cannot_pull_leaves_no_container_and_says_why(lab):
    """The registry has the image, so the controller stores the container, but
    the host cannot pull it: `run` takes the container away again."""
    host = lab.hosts[1]
    path = lab.agent_config(host)
    original = path.read_text()
    # A registry address on the fabric nobody answers at.
    path.write_text(original.replace(f'registry = "{lab.registry}"', 'registry = "10.231.0.99:5000"'))
    lab.stop_agent(host)
    lab.start_agent(host)
    try:
        message = refused(lab, "run", "-d", "--name", "img-unpullable", "--host", host.name, BUSYBOX, "true")
        assert "cannot pull image busybox:latest" in message and "10.231.0.99" in message
        assert "img-unpullable" not in {c["name"] for c in containers(lab)}
    finally:
        path.write_text(original)
        lab.stop_agent(host)
        lab.start_agent(host)
