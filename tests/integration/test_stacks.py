"""`vxmesh stack` on a lab: two services on a shared network from a compose file,
a redeploy that changes only what the file changed, unknown keys refused,
and `stack rm` leaving nothing behind."""
from __future__ import annotations

import ipaddress
import json

import pytest

from deploy.lab import Lab
from proto.addresses import DEFAULT_ADDRESS_POOLS
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import running_lab
from tests.helpers.lab_cli import containers
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration

SERVE = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
FILE = """
version: "3.8"
services:
  web:
    image: {image}
    command: ["sh", "-c", "{serve}"]
    ports: ["8090:80"]
    networks: [front]
    deploy:
      replicas: {web}
  client:
    image: {image}
    command: sleep 3600
    environment:
      TARGET: web
    networks: [front]
    deploy:
      replicas: 1
      restart_policy: {{condition: on-failure, delay: 1s}}
networks:
  front:
    ipam:
      config: [{{subnet: 10.61.0.0/24}}]
"""


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with running_lab(hosts=3, image=busybox_archive) as lab:
        yield lab


def write(tmp_path, text: str):
    path = tmp_path / "stack.yml"
    path.write_text(text)
    return str(path)


def stack_tasks(lab: Lab, name: str) -> list[dict]:
    return json.loads(lab.cli("stack", "ps", name, "--format", "json").stdout)


def running(lab: Lab, name: str, count: int) -> bool:
    listed = stack_tasks(lab, name)
    return len(listed) == count and all(t["state"] == "running" for t in listed)


def test_a_stack_deploys_updates_only_what_changed_and_leaves_nothing(lab, tmp_path):
    out = lab.cli("stack", "deploy", "-c", write(tmp_path, FILE.format(image=BUSYBOX, serve=SERVE, web=2)),
                  "shop").stdout
    assert out.splitlines() == ["Creating network shop_front", "Creating service shop_client",
                                "Creating service shop_web"]
    wait_for(lambda: running(lab, "shop", 3), 60, "three tasks of shop")
    assert json.loads(lab.cli("stack", "ls", "--format", "json").stdout) == [{"name": "shop", "services": 2}]
    # The services share the network: the client reaches web's VIP, and the mesh answers outside.
    [web] = json.loads(lab.cli("service", "inspect", "shop_web").stdout)
    client = next(t for t in stack_tasks(lab, "shop") if t["service"] == "shop_client")
    answer = lab.cli("exec", client["name"], "--", "wget", "-qO-", f"http://{web['virtual_ips']['shop_front']}/")
    assert answer.stdout.strip() in {t["name"].rsplit(".", 1)[1] for t in web["tasks"]}
    assert lab.netns_exec(lab.ext_ns, "wget", "-qO-", f"http://{lab.hosts[2].underlay_ip}:8090/").returncode == 0

    # Redeploy with three web replicas: web is updated, client left alone.
    before = {t["name"] for t in stack_tasks(lab, "shop") if t["service"] == "shop_client"}
    out = lab.cli("stack", "deploy", "-c", write(tmp_path, FILE.format(image=BUSYBOX, serve=SERVE, web=3)),
                  "shop").stdout
    assert out.splitlines() == ["Updating service shop_web"]
    wait_for(lambda: running(lab, "shop", 4), 60, "four tasks of shop")
    assert {t["name"] for t in stack_tasks(lab, "shop") if t["service"] == "shop_client"} == before
    # The same file again changes nothing.
    assert lab.cli("stack", "deploy", "-c", str(tmp_path / "stack.yml"), "shop").stdout == ""

    lab.cli("stack", "rm", "shop")
    assert json.loads(lab.cli("stack", "ls", "--format", "json").stdout) == []
    assert "shop_front" not in lab.cli("network", "ls").stdout
    assert not [c for c in containers(lab) if c["name"].startswith("shop_")]


def test_keys_outside_the_subset_are_reported_and_nothing_is_deployed(lab, tmp_path):
    text = FILE.format(image=BUSYBOX, serve=SERVE, web=1).replace(
        "    networks: [front]\n    deploy:\n      replicas: 1\n",
        "    networks: [front]\n    volumes: [/data]\n    secrets: [token]\n"
        "    deploy:\n      replicas: 1\n      resources: {}\n", 1)
    proc = lab.cli("stack", "deploy", "-c", write(tmp_path, text), "bad", check=False)
    assert proc.returncode == 1
    for key in ("services.web.volumes", "services.web.secrets", "services.web.deploy.resources"):
        assert f"{key}: not supported" in proc.stderr, proc.stderr
    assert json.loads(lab.cli("stack", "ls", "--format", "json").stdout) == []
    assert "bad_front" not in lab.cli("network", "ls").stdout


def test_a_network_without_a_subnet_gets_one_from_the_address_pools(lab, tmp_path):
    """Two stacks whose file gives no subnet: each network gets its own free subnet
    from the controller's default address pools, the tasks' addresses in it."""
    subnets = {}
    for name, port in (("left", 8091), ("right", 8092)):
        text = FILE.format(image=BUSYBOX, serve=SERVE, web=1).replace(
            "    ipam:\n      config: [{subnet: 10.61.0.0/24}]\n", "    driver: overlay\n").replace(
            "8090:80", f"{port}:80")
        lab.cli("stack", "deploy", "-c", write(tmp_path, text), name)
        wait_for(lambda: running(lab, name, 2), 60, f"two tasks of {name}")
        [detail] = json.loads(lab.cli("network", "inspect", f"{name}_front").stdout)
        subnets[name] = ipaddress.ip_network(detail["subnet"])
        for task in stack_tasks(lab, name):
            assert ipaddress.ip_address(task["addresses"][f"{name}_front"]) in subnets[name]
    print(f"stack networks without a subnet: left {subnets['left']}, right {subnets['right']}")
    assert not subnets["left"].overlaps(subnets["right"])
    pools = [ipaddress.ip_network(p.split(":")[0]) for p in DEFAULT_ADDRESS_POOLS]
    assert all(any(s.subnet_of(pool) for pool in pools) for s in subnets.values())
    for name in subnets:
        lab.cli("stack", "rm", name)
        assert f"{name}_front" not in lab.cli("network", "ls").stdout
