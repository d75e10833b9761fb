"""The deployment path: config files, systemd units, provisioning, certificates, Vagrant.

Everything here runs without VMs: the units go through `systemd-analyze
verify`, the provisioning script through its --dry-run, the Vagrantfile
through `vagrant validate` and its node plan through the provisioning dry
run, and the namespace lab is checked to start its daemons with the units'
command lines and config files.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent import config as agent_config
from agent.__main__ import build_parser as agent_parser
from agent.config import AGENT
from controller.__main__ import build_parser as controller_parser
from controller.config import CONTROLLER
from proto import config_file as config
from proto.addresses import first_host
from controller.embedded_etcd import EmbeddedEtcd
from deploy import config_files, lab_registry, registry_config, units
from deploy import lab as deploy_lab
from deploy.lab import Lab

REPO = Path(__file__).resolve().parents[2]
PROVISION = REPO / "deploy" / "provision.sh"
TLS = REPO / "deploy" / "tls.sh"
VAGRANT_DIR = REPO / "vagrant"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (`make setup` installs it)")
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- config files: reading, flags, errors ------------------------------------------

def TLS_DEFAULTS(role: str) -> dict:
    """A daemon's TLS options when nothing sets them: the files provisioning installs."""
    return {"ca": "/etc/vxmesh/tls/ca.pem", "cert": f"/etc/vxmesh/tls/{role}.pem",
            "key": f"/etc/vxmesh/tls/{role}-key.pem", "insecure": False}


def agent_values(argv: list[str], path: Path | None = None) -> dict:
    args = agent_parser().parse_args(argv)
    return config.resolve(AGENT, path, config.given_flags(args, AGENT))


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path):
    path = write(tmp_path / "agent.toml",
                 'name = "n1"\ncontroller = ["10.0.0.2:7946"]\nvtep-ip = "10.0.0.11"\n'
                 'bridge-subnet = "172.30.0.0/16"\n')
    values = agent_values(["--config", str(path), "--vtep-ip", "10.0.0.12"], path)
    assert values == {"name": "n1", "controller": ["10.0.0.2:7946"], "vtep-ip": "10.0.0.12", "api": "",
                      "state-root": "/run/vxmesh", "gwbridge-subnet": "172.18.0.0/16",
                      "bridge-subnet": "172.30.0.0/16", "vtep-filter": "on", "vtep-probes": "on", "port-security": "on",
                      "registry": "", "dns": [], "plugin-socket": "/run/docker/plugins/vxmesh.sock",
                      "docker-api": "/run/docker.sock", **TLS_DEFAULTS("agent")}
    assert agent_config.agent_api(values) == "10.0.0.12:7947"
    assert first_host(values["bridge-subnet"]) == "172.30.0.1"


def test_the_flag_only_command_lines_of_before_still_work():
    values = agent_values(["--name", "h1", "--controller", "10.0.0.2:7946,10.0.0.3:7946",
                           "--vtep-ip", "10.0.0.11", "--api", "10.0.0.11:9000"])
    assert values["controller"] == ["10.0.0.2:7946", "10.0.0.3:7946"]
    assert values["api"] == "10.0.0.11:9000"
    args = controller_parser().parse_args(["--listen", "10.0.0.2:7946", "--listen", "unix:///run/x.sock",
                                      "--etcd", "http://a:2379,http://b:2379", "--data-dir", "/d",
                                      "--prefix", "/p/", "--host-ttl", "3"])
    assert config.resolve(CONTROLLER, None, config.given_flags(args, CONTROLLER)) == {
        "listen": ["10.0.0.2:7946", "unix:///run/x.sock"], "etcd": ["http://a:2379", "http://b:2379"],
        "data-dir": "/d", "prefix": "/p/", "host-ttl": 3, "agent-grace": 120, "dead-host-release": 600, "registry": "",
        "default-address-pools": ["172.16.0.0/12:16", "192.168.0.0/16:20"], **TLS_DEFAULTS("controller"),
        "etcd-ca": "/etc/vxmesh/tls/etcd-ca.pem", "etcd-cert": "/etc/vxmesh/tls/etcd-client.pem",
        "etcd-key": "/etc/vxmesh/tls/etcd-client-key.pem"}


def test_an_empty_etcd_flag_means_the_private_etcd_even_over_the_file(tmp_path):
    path = write(tmp_path / "c.toml", 'etcd = ["http://10.0.0.5:2379"]\n')
    args = controller_parser().parse_args(["--config", str(path), "--etcd", ""])
    assert config.resolve(CONTROLLER, path, config.given_flags(args, CONTROLLER))["etcd"] == []


@pytest.mark.parametrize("text, message", [
    ('controllers = ["a:1"]\n', "unknown key 'controllers'"),
    ('controller = "10.0.0.2:7946"\n', "key 'controller' must be an array of strings, not a string"),
    ('state-root = 5\n', "key 'state-root' must be a string, not an integer"),
    ('vtep-ip = "10.0.0"\n', "key 'vtep-ip' must be an IPv4 address"),
    ('name = "Node_1"\n', "key 'name' must be lowercase letters"),
    ('bridge-subnet = "172.17.0.1/16"\n', "key 'bridge-subnet' must be an IPv4 subnet"),
    ('[tls]\nca = "/etc/vxmesh/tls/ca.pem"\n', "unknown key 'tls'"),
    ('name = "n1\n', "invalid TOML"),
])
def test_a_bad_agent_config_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path / "agent.toml", text)
    with pytest.raises(config.ConfigError) as caught:
        config.read_file(AGENT, path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("text, message", [
    ("host-ttl = true\n", "key 'host-ttl' must be an integer, not a boolean (true)"),
    ("host-ttl = 0\n", "key 'host-ttl' must be a positive number of seconds"),
    ('listen = ["nowhere"]\n', "key 'listen' has 'nowhere', which is not host:port"),
    ('prefix = "vxmesh"\n', "key 'prefix' must start and end with '/'"),
])
def test_a_bad_controller_config_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path / "controller.toml", text)
    with pytest.raises(config.ConfigError, match=re.escape(f"{path}: {message}")):
        config.read_file(CONTROLLER, path)


def test_a_missing_required_option_names_the_file_and_the_flag(tmp_path):
    path = write(tmp_path / "agent.toml", 'name = "n1"\nvtep-ip = "10.0.0.11"\n')
    with pytest.raises(config.ConfigError, match=re.escape(
            f"vxmesh agent needs 'controller': set it in {path} or with --controller")):
        agent_values(["--config", str(path)], path)


@pytest.mark.parametrize("daemon, text, error", [
    ("agent", 'name = "n1"\nvtep-ip = 7\n', "key 'vtep-ip' must be a string, not an integer (7)"),
    ("controller", "etcd = [1]\n", "key 'etcd' must be an array of strings, not an array ([1])"),
])
def test_the_daemons_exit_non_zero_with_that_one_line(tmp_path, daemon, text, error):
    path = write(tmp_path / f"{daemon}.toml", text)
    proc = subprocess.run([Lab.vxmesh_program(), daemon, "--config", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr == f"Error: {path}: {error}\n"


def test_a_rendered_config_reads_back_as_written_with_the_rest_at_defaults(tmp_path):
    values = {"name": "n7", "controller": ["10.0.0.2:7946", "10.0.0.3:7946"], "vtep-ip": "10.0.0.17",
              "state-root": "/run/other"}
    path = write(tmp_path / "agent.toml", config_files.render_agent(values, "A test."))
    assert config.read_file(AGENT, path) == values
    text = path.read_text()
    for option in AGENT.options:
        if option.key not in values:
            assert f"\n# {option.key} = {config.toml_value(option.default)}\n" in text
    with pytest.raises(config.ConfigError, match="without 'vtep-ip'"):
        config_files.render_agent({"name": "n7", "controller": ["a:1"]}, "A test.")


def test_the_example_configs_are_current_and_document_every_option():
    assert config_files.check_examples(write=False) == [], "run `make deploy-config`"
    for schema in (CONTROLLER, AGENT):
        path = config_files.EXAMPLE_DIR / f"{schema.daemon}.toml"
        text = path.read_text()
        set_here = config.read_file(schema, path)
        for option in schema.options:
            shown = "Required." if option.default is None else f"# Default: {config.toml_value(option.default)}"
            assert shown in text, f"{path} does not document {option.key}"
            assert option.key in set_here or f"# {option.key} = " in text
    etcd = (config_files.EXAMPLE_DIR / "etcd.yaml").read_text()
    assert ('initial-cluster: "node1=https://192.168.56.11:2380,node2=https://192.168.56.12:2380,'
            'node3=https://192.168.56.13:2380"') in etcd
    # The member trusts the etcd CA, installed apart from the cluster CA (/etc/vxmesh/tls/ca.pem).
    assert '"client-cert-auth": true' in etcd and '"trusted-ca-file": "/etc/vxmesh/etcd-tls/ca.pem"' in etcd
    assert "/etc/vxmesh/tls/" not in etcd
    controller = config.read_file(CONTROLLER, config_files.EXAMPLE_DIR / "controller.toml")
    assert controller["etcd"] == [f"https://192.168.56.1{i}:2379" for i in (1, 2, 3)]


def test_deployed_etcd_members_get_the_private_etcds_tuning(tmp_path):
    command = EmbeddedEtcd(tmp_path)._command("etcd", 2379, 2380)
    assert command[command.index("--max-txn-ops") + 1] == str(config_files.ETCD_MAX_TXN_OPS)
    retention = command[command.index("--auto-compaction-retention") + 1]
    assert retention == config_files.ETCD_COMPACTION_RETENTION


def test_an_etcd_cluster_list_is_checked():
    for bad, message in [("node1", "NAME=IPV4"), ("node1=10.0.0.1,node1=10.0.0.2", "distinct names"),
                         ("node1=10.0.0.300", "not an IPv4 address"), ("", "at least one member")]:
        with pytest.raises(config_files.ConfigFileError, match=message):
            config_files.parse_cluster(bad)
    cluster = tuple(config_files.parse_cluster("a=10.0.0.1,b=10.0.0.2"))
    with pytest.raises(config_files.ConfigFileError, match="'c' is not one of the etcd members a, b"):
        config_files.render_etcd(config_files.EtcdConfig("c", cluster), "x")


# ---- systemd units -----------------------------------------------------------------------

def unit_text(unit: str) -> str:
    return (units.UNIT_DIR / unit).read_text()


def unit_values(unit: str, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", unit_text(unit), re.MULTILINE)


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = need("systemd-analyze")
    # A root of our own: the units as installed, the programs they start at
    # their installed paths, and this machine's systemd units to order against.
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    programs = {units.INSTALLED_VXMESH: Lab.vxmesh_program(), "/usr/bin/etcd": Path(need("etcd")),
                "/usr/bin/docker-registry": Path(need("docker-registry"))}
    for unit in units.UNITS:
        shutil.copy(units.UNIT_DIR / unit, unit_dir / unit)
        program = units.exec_start(unit).argv[0]
        target = root / program.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(programs[program], target)
    for unit in units.UNITS:
        proc = subprocess.run([analyze, "verify", f"--root={root}", unit], capture_output=True, text=True,
                              timeout=60)
        assert (proc.returncode, proc.stderr) == (0, ""), f"{unit}: {proc.stderr}"


def test_a_broken_unit_fails_that_verify(tmp_path):
    """The check above can fail: an unknown key is reported."""
    analyze = need("systemd-analyze")
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    broken = unit_text(units.ETCD_UNIT).replace("Type=notify", "Type=notify\nKilMode=process")
    (root / "etc/systemd/system" / units.ETCD_UNIT).write_text(broken)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(need("etcd"), root / "usr/bin/etcd")
    proc = subprocess.run([analyze, "verify", f"--root={root}", units.ETCD_UNIT], capture_output=True, text=True,
                          timeout=60)
    assert "Unknown key 'KilMode'" in proc.stderr


def test_the_agent_unit_leaves_containers_running_when_it_stops():
    agent = units.AGENT_UNIT
    assert unit_values(agent, "KillMode") == ["process"]
    assert unit_values(agent, "RuntimeDirectory") == []       # would delete /run/vxmesh on stop
    assert unit_values(agent, "Wants") == ["network-online.target"]
    assert unit_values(agent, "After") == ["network-online.target vxmesh-controller.service"]
    assert unit_values(units.CONTROLLER_UNIT, "After") == ["network-online.target vxmesh-etcd.service"]
    # Ordering only: a host without a controller or an etcd member needs no such unit.
    for unit in units.UNITS:
        assert all("vxmesh" not in v for v in unit_values(unit, "Wants") + unit_values(unit, "Requires"))


def test_units_log_to_the_journal_and_come_back():
    for unit in units.UNITS:
        assert unit_values(unit, "StandardOutput") == unit_values(unit, "StandardError") == []
        assert unit_values(unit, "Restart") in (["always"], ["on-failure"])
        assert unit_values(unit, "WantedBy") == ["multi-user.target"]


# ---- the lab runs what the units run ----------------------------------------------------

def raw_exec_start(unit: str) -> list[str]:
    [line] = unit_values(unit, "ExecStart")
    return shlex.split(line)


def test_the_lab_starts_each_daemon_with_its_units_command_line(tmp_path):
    lab = Lab("vxtab", hosts=2, etcd_members=3, state_root=tmp_path)
    vxmesh = str(Lab.vxmesh_program())

    def substituted(unit: str, installed_config: str, lab_config: Path) -> list[str]:
        argv = raw_exec_start(unit)
        assert installed_config in argv
        return [{units.INSTALLED_VXMESH: vxmesh, installed_config: str(lab_config)}.get(a, a) for a in argv]

    assert lab.controller_argv() == substituted(units.CONTROLLER_UNIT, "/etc/vxmesh/controller.toml",
                                                tmp_path / "vxtab" / "controller.toml")
    for host in lab.hosts:
        assert lab.agent_argv(host) == substituted(units.AGENT_UNIT, "/etc/vxmesh/agent.toml",
                                                   tmp_path / "vxtab" / f"agent-{host.name}.toml")
    for member in lab.etcd_members:
        assert lab.etcd_argv(member) == substituted(units.ETCD_UNIT, "/etc/vxmesh/etcd.yaml",
                                                    tmp_path / "vxtab" / f"etcd-{member.name}.yaml")
    assert lab_registry.argv(lab.registry_config) == substituted(units.REGISTRY_UNIT, "/etc/vxmesh/registry.yml",
                                                                 tmp_path / "vxtab" / "registry.yml")
    assert lab.controller_argv()[0] == vxmesh and Path(vxmesh).is_file()


def test_the_lab_writes_its_config_files_in_the_deployed_format(tmp_path):
    lab = Lab("vxtab", hosts=2, etcd_members=3, state_root=tmp_path)
    lab.state_dir.mkdir(parents=True)
    lab.write_configs()
    controller = config.read_file(CONTROLLER, lab.controller_config)
    assert controller["listen"] == ["10.231.0.2:7946", f"unix://{lab.controller_socket}"]
    assert controller["etcd"] == ["https://10.231.0.3:2379", "https://10.231.0.4:2379", "https://10.231.0.5:2379"]
    tls = lab.tls_dir
    assert (controller["ca"], controller["cert"], controller["key"]) == (
        f"{tls}/ca.pem", f"{tls}/controller-ctl.pem", f"{tls}/controller-ctl-key.pem")
    # etcd: the etcd CA's files, which no agent and no admin holds.
    assert (controller["etcd-ca"], controller["etcd-cert"], controller["etcd-key"]) == (
        f"{tls}/etcd/ca.pem", f"{tls}/etcd/controller-ctl.pem", f"{tls}/etcd/controller-ctl-key.pem")
    for host in lab.hosts:
        assert config.read_file(AGENT, lab.agent_config(host)) == {
            "name": host.name, "controller": ["10.231.0.2:7946"], "vtep-ip": host.underlay_ip, "api": host.api,
            "registry": "10.231.0.10:5000", "ca": f"{tls}/ca.pem", "cert": f"{tls}/agent-{host.name}.pem", "key": f"{tls}/agent-{host.name}-key.pem",
            "plugin-socket": str(lab.plugin_socket(host)), "docker-api": str(lab.docker_api_socket(host))}
    example_keys = re.findall(r"^([a-z-]+):", (config_files.EXAMPLE_DIR / "etcd.yaml").read_text(), re.MULTILINE)
    for member in lab.etcd_members:
        text = lab.etcd_config(member).read_text()
        assert re.findall(r"^([a-z-]+):", text, re.MULTILINE) == example_keys
        assert f'name: "{member.name}"' in text
        assert 'initial-cluster: "e1=https://10.231.0.3:2380,e2=https://10.231.0.4:2380,' \
               'e3=https://10.231.0.5:2380"' in text
        assert f'"cert-file": "{tls}/etcd/etcd-{member.name}.pem"' in text
        assert f'"trusted-ca-file": "{tls}/etcd/ca.pem"' in text
    assert config.read_file(CONTROLLER, lab.controller_config)["registry"] == "10.231.0.10:5000"
    registry = lab.registry_config.read_text()
    assert 'addr: "10.231.0.10:5000"' in registry
    assert f'certificate: "{tls}/controller-registry.pem"' in registry and f'- "{tls}/ca.pem"' in registry
    assert f'rootdirectory: "{lab.state_dir}/registry"' in registry   # goes with the lab
    without_etcd = Lab("vxtac", hosts=1, state_root=tmp_path)
    without_etcd.state_dir.mkdir(parents=True)
    without_etcd.write_configs()
    private = config.read_file(CONTROLLER, without_etcd.controller_config)
    assert private["etcd"] == [] and private["data-dir"] == str(without_etcd.state_dir / "etcd")
    # The private etcd trusts the etcd CA too.
    assert private["etcd-ca"] == f"{without_etcd.tls_dir}/etcd/ca.pem"


def test_every_package_of_the_checkout_is_installed():
    """provision.sh installs with pip: a package missing from pyproject's list would be missing there."""
    import tomllib
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {str(module.parent.relative_to(REPO)).replace("/", ".")
             for root in ("proto", "transport", "cli", "controller", "agent", "deploy")
             for module in (REPO / root).rglob("*.py")}
    assert found == listed


def test_the_lab_can_give_its_agents_options_and_rewrite_one_agents(tmp_path):
    lab = Lab("vxtad", hosts=2, state_root=tmp_path, agent_options={"port-security": "off"})
    lab.state_dir.mkdir(parents=True)
    lab.write_configs()
    h1, h2 = lab.hosts
    assert [config.read_file(AGENT, lab.agent_config(h))["port-security"] for h in lab.hosts] == ["off", "off"]
    lab.write_agent_config(h1, {"vtep-filter": "off"})   # the lab's own options replaced, as restart_agent_with does
    h1_values = config.read_file(AGENT, lab.agent_config(h1))
    assert h1_values["vtep-filter"] == "off" and "port-security" not in h1_values
    assert config.read_file(AGENT, lab.agent_config(h2))["port-security"] == "off"
    with pytest.raises(ValueError, match="agent options: cannot write key 'port-security'"):
        Lab("vxtae", hosts=1, state_root=tmp_path, agent_options={"port-security": "maybe"})
    with pytest.raises(ValueError, match="unknown keys"):
        Lab("vxtae", hosts=1, state_root=tmp_path, agent_options={"port-securty": "off"})
    assert deploy_lab.main(["status", "--prefix", "vxtae", "--agent-option", "port-security"]) == 2


# ---- provisioning, in dry-run mode ---------------------------------------------------

@dataclass
class DryRun:
    commands: list[list[str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)     # path -> content
    modes: dict[str, str] = field(default_factory=dict)

    def ran(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.commands if c[:len(prefix)] == list(prefix)]


# Commands that change the machine: a dry run must call none of them.
MUTATORS = ("apt-get", "systemctl", "install", "mv", "chmod", "cp", "ln", "pip", "useradd", "openssl")


def provision(tmp_path: Path, *args: str, src: Path = REPO) -> tuple[subprocess.CompletedProcess, DryRun]:
    stubs = tmp_path / "stubs"
    called = tmp_path / "called"
    if not stubs.exists():
        stubs.mkdir()
        for name in MUTATORS:
            stub = stubs / name
            stub.write_text(f'#!/bin/sh\necho "{name} $*" >> {called}\nexit 1\n')
            stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(src / "deploy/provision.sh"), "--dry-run", *args],
                          capture_output=True, text=True, env=env, timeout=60)
    assert not called.exists(), f"the dry run ran: {called.read_text()}"
    result = DryRun()
    current = None
    for line in proc.stdout.splitlines():
        if line.startswith("+ write "):
            _, _, path, _, mode = line.split()
            current = path
            result.files[path], result.modes[path] = "", mode
        elif line.startswith("|") and current is not None:
            result.files[current] += line[2:] + "\n"
        elif line.startswith("+ "):
            current = None
            result.commands.append(shlex.split(line[2:]))
    return proc, result


def enabled_units(run: DryRun) -> list[str]:
    return [c[2] for c in run.ran("systemctl", "enable")]


@pytest.mark.parametrize("role, units_enabled, configs", [
    ("all", ["vxmesh-etcd.service", "vxmesh-controller.service", "vxmesh-agent.service"],
     ["etcd.yaml", "controller.toml", "agent.toml"]),
    ("controller", ["vxmesh-etcd.service", "vxmesh-controller.service"], ["etcd.yaml", "controller.toml"]),
    ("agent", ["vxmesh-agent.service"], ["agent.toml"]),
])
def test_provisioning_dry_run_prints_the_steps_of_each_role(tmp_path, role, units_enabled, configs):
    extra = ["--controller", "10.9.0.1:7946"] if role == "agent" else []
    proc, run = provision(tmp_path, "--role", role, "--name", "n1", "--address", "10.9.0.1", "--insecure", *extra)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"# vxmesh on n1 (10.9.0.1): role {role}" + (
        ", etcd member" if "etcd.yaml" in configs else "") + ", dry run"

    [install] = run.ran("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install")
    packages = set(install[install.index("--no-install-recommends") + 1:])
    assert {"python3", "python3-venv"} <= packages
    assert ("etcd-server" in packages) == ("etcd.yaml" in configs)
    assert ("nftables" in packages) == ("agent.toml" in configs)
    assert bool(run.ran("systemctl", "disable", "--now", "etcd.service")) == ("etcd.yaml" in configs)

    assert run.ran("python3", "-m", "venv") == [["python3", "-m", "venv", "/opt/vxmesh/venv"]]
    assert run.ran("/opt/vxmesh/venv/bin/pip") == [
        ["/opt/vxmesh/venv/bin/pip", "install", "--quiet", "--upgrade", str(REPO)]]
    assert "VXMESH_CONTROLLER:=10.9.0.1:7946" in run.files["/usr/local/bin/vxmesh"]
    assert "VXMESH_INSECURE:=1" in run.files["/usr/local/bin/vxmesh"]
    assert run.modes["/usr/local/bin/vxmesh"] == "0755"

    assert sorted(p for p in run.files if p.startswith("/etc/vxmesh/")) == sorted(f"/etc/vxmesh/{c}" for c in configs)
    assert [c[-1] for c in run.ran("install", "-m", "0644") if c[-1].startswith("/etc/systemd/")] == [
        f"/etc/systemd/system/{u}" for u in units_enabled]
    assert enabled_units(run) == units_enabled
    assert [c[3] for c in run.ran("systemctl", "restart", "--no-block")] == units_enabled
    # Units are installed, then systemd reloads, then they start.
    order = [" ".join(c) for c in run.commands]
    assert order.index("systemctl daemon-reload") < order.index(f"systemctl enable {units_enabled[0]}")

    for name in configs:
        path = tmp_path / name
        path.write_text(run.files[f"/etc/vxmesh/{name}"])
        if name == "agent.toml":
            assert config.read_file(AGENT, path) == {
                "name": "n1", "controller": ["10.9.0.1:7946"], "vtep-ip": "10.9.0.1", "insecure": True,
                "plugin-socket": ""}
        elif name == "controller.toml":
            assert config.read_file(CONTROLLER, path) == {
                "listen": ["10.9.0.1:7946", "127.0.0.1:7946"], "etcd": ["http://10.9.0.1:2379"], "insecure": True}
        else:
            assert 'initial-cluster: "n1=http://10.9.0.1:2380"' in path.read_text()


def test_provisioning_lets_the_hosts_docker_and_podman_use_vxmesh(tmp_path):
    proc, run = provision(tmp_path, "--role", "agent", "--name", "n2", "--address", "10.9.0.2", "--insecure",
                          "--controller", "10.9.0.1:7946", "--engines", "docker,podman")
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "agent.toml"
    path.write_text(run.files["/etc/vxmesh/agent.toml"])
    assert config.read_file(AGENT, path)["plugin-socket"] == "/run/docker/plugins/vxmesh.sock"
    assert run.ran("ln", "-sf") == [["ln", "-sf", "/opt/vxmesh/venv/bin/vxmesh-cni", "/usr/lib/cni/vxmesh-cni"]]
    assert 'network_backend = "cni"' in run.files["/etc/containers/containers.conf.d/50-vxmesh.conf"]
    assert "docker network create -d vxmesh --ipam-driver vxmesh" in proc.stdout
    # Docker alone: the socket, nothing of podman's
    proc, run = provision(tmp_path, "--role", "agent", "--name", "n2", "--address", "10.9.0.2", "--insecure",
                          "--controller", "10.9.0.1:7946", "--engines", "docker")
    assert proc.returncode == 0 and not run.ran("ln")
    assert "/etc/containers/containers.conf.d/50-vxmesh.conf" not in run.files
    proc, run = provision(tmp_path, "--role", "agent", "--name", "n2", "--address", "10.9.0.2", "--insecure",
                          "--controller", "10.9.0.1:7946", "--engines", "rkt")
    assert proc.returncode != 0 and "--engines takes docker and podman, not 'rkt'" in proc.stderr
    assert not enabled_units(run)
    proc, run = provision(tmp_path, "--role", "controller", "--name", "c", "--address", "10.9.0.1", "--insecure",
                          "--engines", "docker")
    assert proc.returncode != 0 and "--engines serves the engines of an agent's host" in proc.stderr


def test_provisioning_a_member_of_a_three_member_etcd_cluster(tmp_path):
    cluster = "n1=10.9.0.1,n2=10.9.0.2,n3=10.9.0.3"
    proc, run = provision(tmp_path, "--role", "agent", "--name", "n3", "--address", "10.9.0.3", "--insecure",
                          "--controller", "10.9.0.1:7946", "--etcd-cluster", cluster)
    assert proc.returncode == 0, proc.stderr
    assert enabled_units(run) == ["vxmesh-etcd.service", "vxmesh-agent.service"]
    assert 'listen-peer-urls: "http://10.9.0.3:2380"' in run.files["/etc/vxmesh/etcd.yaml"]
    proc, run = provision(tmp_path, "--role", "controller", "--name", "ctl", "--address", "10.9.0.9", "--insecure",
                          "--etcd-endpoints", "http://10.9.0.1:2379,http://10.9.0.2:2379")
    assert proc.returncode == 0, proc.stderr
    assert enabled_units(run) == ["vxmesh-controller.service"]      # an existing etcd: none here
    path = write(tmp_path / "c.toml", run.files["/etc/vxmesh/controller.toml"])
    assert config.read_file(CONTROLLER, path)["etcd"] == ["http://10.9.0.1:2379", "http://10.9.0.2:2379"]


@pytest.mark.parametrize("args, error", [
    (["--address", "10.9.0.1"], "--role must be controller, agent or all, not ''"),
    (["--role", "all"], "--address is required"),
    (["--role", "agent", "--address", "10.9.0.2", "--insecure"], "--controller is required"),
    (["--role", "all", "--address", "10.9.0.1", "--insecure", "--etcd-cluster", "a=10.9.0.1",
      "--etcd-endpoints", "http://x:1"], "exclude each other"),
    (["--role", "all", "--address", "10.9.0.1", "--bogus"], "unknown argument '--bogus'"),
    (["--role", "all", "--address", "10.9.0.300", "--name", "n1", "--insecure"], "cannot render the etcd config"),
    (["--role", "agent", "--address", "10.9.0.2", "--name", "n2", "--controller", "nowhere", "--insecure"],
     "cannot render the agent config"),
    (["--role", "all", "--address", "10.9.0.1"], "--tls-dir DIR (certificates made by deploy/tls.sh) or --insecure"),
    (["--role", "all", "--address", "10.9.0.1", "--insecure", "--tls-dir", "/x"], "exclude each other"),
    (["--role", "agent", "--address", "10.9.0.2", "--controller", "10.9.0.1:7946", "--insecure", "--run-registry"],
     "--run-registry runs the registry on a controller node"),
    (["--role", "all", "--address", "10.9.0.1", "--name", "n1", "--insecure", "--registry", "Bad:5000"],
     "cannot render the controller config"),
])
def test_provisioning_refuses_bad_arguments_before_doing_anything(tmp_path, args, error):
    proc, run = provision(tmp_path, *args)
    assert proc.returncode != 0
    assert error in proc.stderr
    assert not enabled_units(run)


TLS_DIRS = ("/etc/vxmesh/tls", "/etc/vxmesh/etcd-tls")


def tls_installs(run: DryRun) -> list[list[str]]:
    return [c for c in run.ran("install") if c[-1].startswith(tuple(f"{d}/" for d in TLS_DIRS))]


def tls_dirs(run: DryRun) -> list[list[str]]:
    return [c for c in run.ran("install", "-d") if c[-1] in TLS_DIRS]


def test_provisioning_installs_the_certificates_of_the_hosts_roles(tmp_path):
    certs = tmp_path / "tls"
    subprocess.run(["bash", str(TLS), str(certs), "n1=10.9.0.1"], check=True, capture_output=True)
    proc, run = provision(tmp_path, "--role", "all", "--name", "n1", "--address", "10.9.0.1", "--tls-dir", str(certs))
    assert proc.returncode == 0, proc.stderr
    # Private keys 0600 in directories 0700, the CAs' keys nowhere. etcd's files (the
    # etcd CA, its certificate, its key) in a directory of etcd's own user; the
    # controller's etcd client files with root's, where no agent's are.
    assert [c[1:] for c in tls_dirs(run)] == [["-d", "-m", "0700", "/etc/vxmesh/tls"],
                                             ["-d", "-m", "0700", "-o", "etcd", "-g", "etcd", "/etc/vxmesh/etcd-tls"]]
    assert [c[1:] for c in tls_installs(run)] == [
        ["-m", "0644", f"{certs}/ca.pem", "/etc/vxmesh/tls/ca.pem"],
        ["-m", "0644", f"{certs}/etcd/ca.pem", "/etc/vxmesh/tls/etcd-ca.pem"],
        ["-m", "0644", f"{certs}/admin.pem", "/etc/vxmesh/tls/admin.pem"],
        ["-m", "0600", f"{certs}/admin-key.pem", "/etc/vxmesh/tls/admin-key.pem"],
        ["-m", "0644", f"{certs}/agent-n1.pem", "/etc/vxmesh/tls/agent.pem"],
        ["-m", "0600", f"{certs}/agent-n1-key.pem", "/etc/vxmesh/tls/agent-key.pem"],
        ["-m", "0644", f"{certs}/controller-n1.pem", "/etc/vxmesh/tls/controller.pem"],
        ["-m", "0600", f"{certs}/controller-n1-key.pem", "/etc/vxmesh/tls/controller-key.pem"],
        ["-m", "0644", f"{certs}/etcd/controller-n1.pem", "/etc/vxmesh/tls/etcd-client.pem"],
        ["-m", "0600", f"{certs}/etcd/controller-n1-key.pem", "/etc/vxmesh/tls/etcd-client-key.pem"],
        ["-m", "0644", "-o", "etcd", "-g", "etcd", f"{certs}/etcd/ca.pem", "/etc/vxmesh/etcd-tls/ca.pem"],
        ["-m", "0644", "-o", "etcd", "-g", "etcd", f"{certs}/etcd/etcd-n1.pem", "/etc/vxmesh/etcd-tls/etcd.pem"],
        ["-m", "0600", "-o", "etcd", "-g", "etcd", f"{certs}/etcd/etcd-n1-key.pem",
         "/etc/vxmesh/etcd-tls/etcd-key.pem"]]
    # The daemons' config files use the installed files by default, and etcd speaks https.
    controller = config.read_file(CONTROLLER, write(tmp_path / "c.toml", run.files["/etc/vxmesh/controller.toml"]))
    assert controller == {"listen": ["10.9.0.1:7946", "127.0.0.1:7946"], "etcd": ["https://10.9.0.1:2379"]}
    installed = [c[-1] for c in tls_installs(run)]
    for key in ("ca", "cert", "key", "etcd-ca", "etcd-cert", "etcd-key"):
        assert CONTROLLER.option(key).default in installed, key
    agent = config.read_file(AGENT, write(tmp_path / "a.toml", run.files["/etc/vxmesh/agent.toml"]))
    assert "insecure" not in agent and AGENT.option("cert").default == "/etc/vxmesh/tls/agent.pem"
    etcd = run.files["/etc/vxmesh/etcd.yaml"]
    assert '"cert-file": "/etc/vxmesh/etcd-tls/etcd.pem"' in etcd
    assert '"trusted-ca-file": "/etc/vxmesh/etcd-tls/ca.pem"' in etcd and "/etc/vxmesh/tls/" not in etcd
    assert "VXMESH_INSECURE" not in run.files["/usr/local/bin/vxmesh"]

    proc, run = provision(tmp_path, "--role", "agent", "--name", "n1", "--address", "10.9.0.1",
                          "--controller", "10.9.0.9:7946", "--tls-dir", str(certs))
    assert proc.returncode == 0, proc.stderr
    assert [c[-1] for c in tls_installs(run)] == [f"/etc/vxmesh/tls/{f}.pem" for f in
                                                 ("ca", "admin", "admin-key", "agent", "agent-key")]
    proc, _ = provision(tmp_path, "--role", "all", "--name", "n2", "--address", "10.9.0.2", "--tls-dir", str(certs))
    assert proc.returncode == 1
    assert f"{certs}/agent-n2.pem is missing: make it with deploy/tls.sh {certs} n2=10.9.0.2" in proc.stderr


def test_provisioning_refuses_certificates_made_before_the_etcd_ca(tmp_path):
    """A directory made before the etcd CA existed has no DIR/etcd: provisioning
    an etcd member or a controller from it stops, naming what deploy/tls.sh
    would add; an agent needs none of it."""
    certs = tmp_path / "tls"
    subprocess.run(["bash", str(TLS), str(certs), "n1=10.9.0.1"], check=True, capture_output=True)
    shutil.rmtree(certs / "etcd")
    proc, run = provision(tmp_path, "--role", "all", "--name", "n1", "--address", "10.9.0.1", "--tls-dir", str(certs))
    assert proc.returncode == 1 and not tls_installs(run)
    assert f"{certs}/etcd/controller-n1.pem is missing: make it with deploy/tls.sh {certs} n1=10.9.0.1" in proc.stderr
    proc, _ = provision(tmp_path, "--role", "agent", "--name", "n1", "--address", "10.9.0.1",
                        "--controller", "10.9.0.9:7946", "--tls-dir", str(certs))
    assert proc.returncode == 0, proc.stderr
    # tls.sh run again adds the etcd CA and the etcd certificates, keeping the rest.
    subprocess.run(["bash", str(TLS), str(certs), "n1=10.9.0.1"], check=True, capture_output=True)
    proc, _ = provision(tmp_path, "--role", "all", "--name", "n1", "--address", "10.9.0.1", "--tls-dir", str(certs))
    assert proc.returncode == 0, proc.stderr


def test_provisioning_a_registry_on_the_controller_node(tmp_path):
    certs = tmp_path / "tls"
    subprocess.run(["bash", str(TLS), str(certs), "n1=10.9.0.1"], check=True, capture_output=True)
    proc, run = provision(tmp_path, "--role", "all", "--name", "n1", "--address", "10.9.0.1", "--tls-dir", str(certs),
                          "--run-registry")
    assert proc.returncode == 0, proc.stderr
    [install] = run.ran("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install")
    assert {"docker-registry", "skopeo", "crun", "conmon", "umoci"} <= set(install)
    # Debian's own registry would serve anyone on :5000; it goes before ours starts.
    order = [" ".join(c) for c in run.commands]
    assert order.index("systemctl disable --now docker-registry.service") < order.index(
        "systemctl restart --no-block vxmesh-registry.service")
    assert enabled_units(run) == ["vxmesh-etcd.service", "vxmesh-registry.service", "vxmesh-controller.service",
                                  "vxmesh-agent.service"]
    registry = run.files["/etc/vxmesh/registry.yml"]
    assert 'addr: "10.9.0.1:5000"' in registry and "clientcas:" in registry
    assert f'certificate: "{registry_config.CREDENTIALS}/cert"' in registry
    # The controller's certificate, handed to the registry's unprivileged user by systemd.
    dropin = run.files["/etc/systemd/system/vxmesh-registry.service.d/tls.conf"]
    assert "LoadCredential=cert:/etc/vxmesh/tls/controller.pem" in dropin
    assert "LoadCredential=key:/etc/vxmesh/tls/controller-key.pem" in dropin
    for name, schema in (("controller.toml", CONTROLLER), ("agent.toml", AGENT)):
        values = config.read_file(schema, write(tmp_path / name, run.files[f"/etc/vxmesh/{name}"]))
        assert values["registry"] == "10.9.0.1:5000"
    # Another host names the same registry; without --run-registry it runs none.
    proc, run = provision(tmp_path, "--role", "agent", "--name", "n1", "--address", "10.9.0.1", "--insecure",
                          "--controller", "10.9.0.9:7946", "--registry", "10.9.0.9:5000")
    assert proc.returncode == 0, proc.stderr
    assert enabled_units(run) == ["vxmesh-agent.service"] and "/etc/vxmesh/registry.yml" not in run.files
    agent = config.read_file(AGENT, write(tmp_path / "a.toml", run.files["/etc/vxmesh/agent.toml"]))
    assert agent["registry"] == "10.9.0.9:5000"


def test_the_registry_config_renders_its_settings():
    plain = registry_config.render_registry(registry_config.RegistryConfig("10.0.0.2:5000", "/srv/r"), "x")
    assert 'addr: "10.0.0.2:5000"' in plain and 'rootdirectory: "/srv/r"' in plain and "tls:" not in plain
    assert "delete:\n    enabled: true" in plain
    example = (config_files.EXAMPLE_DIR / "registry.yml").read_text()
    assert 'addr: "192.168.56.11:5000"' in example and '- "/etc/vxmesh/tls/ca.pem"' in example
    assert units.exec_start(units.REGISTRY_UNIT).config == "/etc/vxmesh/registry.yml"
    assert unit_values(units.REGISTRY_UNIT, "User") == ["docker-registry"]
    assert unit_values(units.REGISTRY_UNIT, "Conflicts") == ["docker-registry.service"]


def test_the_shell_scripts_pass_shellcheck():
    shellcheck = need("shellcheck")
    proc = subprocess.run([shellcheck, str(PROVISION), str(TLS)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


# ---- certificates ----------------------------------------------------------------------------

def openssl(*args: str) -> str:
    return subprocess.run([need("openssl"), *args], check=True, capture_output=True, text=True).stdout


# Each node's files, by the CA that signs them: the cluster CA in DIR, the etcd CA in DIR/etcd.
CLUSTER_FILES = ("agent-{}", "controller-{}")
ETCD_FILES = ("etcd/etcd-{}", "etcd/controller-{}")


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def verifies(ca: Path, cert: Path) -> bool:
    proc = subprocess.run([need("openssl"), "verify", "-CAfile", str(ca), str(cert)], capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.strip().endswith("OK")


def test_certificates_are_made_once_and_signed_by_one_ca(tmp_path):
    certs = tmp_path / "tls"
    nodes = {"node1": "192.168.56.11", "node2": "192.168.56.12"}
    subprocess.run(["bash", str(TLS), str(certs), *(f"{n}={ip}" for n, ip in nodes.items())],
                   check=True, capture_output=True)
    cluster_ca, etcd_ca = certs / "ca.pem", certs / "etcd" / "ca.pem"
    for name, ip in nodes.items():
        for ca, other_ca, patterns in ((cluster_ca, etcd_ca, CLUSTER_FILES), (etcd_ca, cluster_ca, ETCD_FILES)):
            for pattern in patterns:
                cert = certs / f"{pattern.format(name)}.pem"
                # Signed by its CA and not by the other one: etcd trusts no agent's certificate.
                assert verifies(ca, cert) and not verifies(other_ca, cert), cert
                text = openssl("x509", "-in", str(cert), "-noout", "-text")
                assert f"DNS:{name}" in text and f"IP Address:{ip}" in text
                role = pattern.split("/")[-1].split("-")[0]
                assert f"OU = {role}, CN = {name}" in text
                assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
                assert stat.S_IMODE((certs / f"{pattern.format(name)}-key.pem").stat().st_mode) == 0o600
    admin = openssl("x509", "-in", str(certs / "admin.pem"), "-noout", "-text")
    assert "OU = admin, CN = admin" in admin and "TLS Web Client Authentication" in admin
    assert "Server Authentication" not in admin
    assert verifies(cluster_ca, certs / "admin.pem") and not verifies(etcd_ca, certs / "admin.pem")
    for key in ("ca-key.pem", "etcd/ca-key.pem", "admin-key.pem"):
        assert stat.S_IMODE((certs / key).stat().st_mode) == 0o600
    for directory in (certs, certs / "etcd"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    before = tree(certs)

    # Again, with one more node: what existed stays, the new node joins the same CAs.
    subprocess.run(["bash", str(TLS), str(certs), "node1=192.168.56.11", "node3=192.168.56.13"],
                   check=True, capture_output=True)
    after = tree(certs)
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {f"{p.format('node3')}{s}.pem" for p in CLUSTER_FILES + ETCD_FILES
                                        for s in ("", "-key")}
    openssl("verify", "-CAfile", str(cluster_ca), str(certs / "agent-node3.pem"))

    bad = subprocess.run(["bash", str(TLS), str(certs), "Node_4=10.0.0.1"], capture_output=True, text=True)
    assert bad.returncode == 1 and "is not NAME=IP" in bad.stderr
    assert sorted(p.name for p in certs.rglob(".*")) == []


def test_certificate_runs_at_the_same_time_share_one_ca(tmp_path):
    """As when Vagrant's libvirt provider brings the VMs up in parallel."""
    certs = tmp_path / "tls"
    nodes = [f"node{i}=192.168.56.1{i}" for i in (1, 2, 3)]
    runs = [subprocess.Popen(["bash", str(TLS), str(certs), *nodes], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    assert [(r.wait(timeout=120), r.stderr.read()) for r in runs] == [(0, "")] * 3
    for i in (1, 2, 3):
        for ca, patterns in ((certs / "ca.pem", CLUSTER_FILES), (certs / "etcd" / "ca.pem", ETCD_FILES)):
            for pattern in patterns:
                openssl("verify", "-CAfile", str(ca), str(certs / f"{pattern.format(f'node{i}')}.pem"))
    for directory in (certs, certs / "etcd"):
        ca_key = openssl("pkey", "-in", str(directory / "ca-key.pem"), "-pubout")
        assert openssl("x509", "-in", str(directory / "ca.pem"), "-noout", "-pubkey") == ca_key


# ---- Vagrant --------------------------------------------------------------------------------

def vagrant(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    # Vagrant's own state goes to the test's directory, not ~/.vagrant.d or vagrant/.vagrant.
    environment = {**os.environ, "VAGRANT_CWD": str(VAGRANT_DIR), "VAGRANT_HOME": str(tmp_path / "home"),
                   "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"), "VAGRANT_CHECKPOINT_DISABLE": "1", **env}
    return subprocess.run([need("vagrant"), *args], capture_output=True, text=True, env=environment, timeout=120)


def plan(**env: str) -> dict:
    proc = subprocess.run([need("ruby"), str(VAGRANT_DIR / "plan.rb")], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_vagrantfile_validates(tmp_path):
    for env in ({}, {"VXMESH_NODES": "5", "VXMESH_ETCD_MEMBERS": "3", "VXMESH_BOX": "generic/ubuntu2404"}):
        proc = vagrant(tmp_path, "validate", **env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "validated successfully" in proc.stdout
    listing = vagrant(tmp_path, "status", "--machine-readable", VXMESH_NODES="4")
    machines = {line.split(",")[1] for line in listing.stdout.splitlines() if ",state," in line}
    assert machines == {"node1", "node2", "node3", "node4"}


@pytest.mark.parametrize("env, message", [
    ({"VXMESH_NODES": "0"}, 'VXMESH_NODES="0": must be a whole number in 1..9'),
    ({"VXMESH_ETCD_MEMBERS": "2"}, "VXMESH_ETCD_MEMBERS=2: must be 1 or 3"),
    ({"VXMESH_SUBNET": "10.0.0.0/24"}, "VXMESH_SUBNET"),
])
def test_the_vagrantfile_refuses_bad_settings(tmp_path, env, message):
    proc = vagrant(tmp_path, "validate", **env)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


@pytest.mark.parametrize("etcd_members", ["1", "3"])
def test_each_vagrant_node_is_provisioned_by_the_deploy_script(tmp_path, etcd_members):
    """The plan's command lines, run here in dry-run mode with the checkout
    where the VMs have it, and certificates made as the Vagrantfile's trigger makes them."""
    settings = plan(VXMESH_ETCD_MEMBERS=etcd_members)
    nodes = settings["node_plan"]
    assert [(n["name"], n["address"], n["role"]) for n in nodes] == [
        ("node1", "192.168.56.11", "all"), ("node2", "192.168.56.12", "agent"), ("node3", "192.168.56.13", "agent")]
    certs = tmp_path / "tls"
    tls_dir, *tls_nodes = settings["tls"]
    assert tls_dir == "vagrant/tls" and tls_nodes == [f"{n['name']}={n['address']}" for n in nodes]
    subprocess.run(["bash", str(TLS), str(certs), *tls_nodes], check=True, capture_output=True)

    for node in nodes:
        script, *args = node["provision"]
        assert script == "/vxmesh/deploy/provision.sh"
        args = [str(certs) if a == "/vxmesh/vagrant/tls" else a for a in args]
        proc, run = provision(tmp_path, *args)
        assert proc.returncode == 0, proc.stderr
        member = node["name"] == "node1" or etcd_members == "3"
        expected = (["vxmesh-etcd.service"] if member else []) + (
            ["vxmesh-controller.service"] if node["role"] == "all" else []) + ["vxmesh-agent.service"]
        if node["name"] == "node1":    # node1 also runs the registry
            expected.insert(expected.index("vxmesh-controller.service"), "vxmesh-registry.service")
        assert enabled_units(run) == expected
        agent = write(tmp_path / "agent.toml", run.files["/etc/vxmesh/agent.toml"])
        assert config.read_file(AGENT, agent) == {
            "name": node["name"], "controller": ["192.168.56.11:7946"], "vtep-ip": node["address"],
            "registry": "192.168.56.11:5000", "plugin-socket": ""}
        installed = [c[-1] for c in tls_installs(run) if c[2] == "0600"]
        # Only etcd members and the controller get keys of the etcd CA.
        assert installed == ["/etc/vxmesh/tls/admin-key.pem", "/etc/vxmesh/tls/agent-key.pem"] + (
            ["/etc/vxmesh/tls/controller-key.pem", "/etc/vxmesh/tls/etcd-client-key.pem"]
            if node["role"] == "all" else []) + (
            ["/etc/vxmesh/etcd-tls/etcd-key.pem"] if member else [])
        if node["role"] == "all":
            controller = write(tmp_path / "controller.toml", run.files["/etc/vxmesh/controller.toml"])
            assert config.read_file(CONTROLLER, controller)["etcd"] == [
                f"https://192.168.56.1{i}:2379" for i in range(1, int(etcd_members) + 1)]
