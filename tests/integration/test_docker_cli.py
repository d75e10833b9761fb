"""The `vxmesh` command as a Docker user types it, against a running lab: the
regressions found while comparing it with Docker's own behaviour."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import grpc
import pytest

from deploy.lab_processes import REPO_ROOT
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc

from tests.helpers.images import BUSYBOX
from tests.helpers.lab import lab_with_blue
from tests.helpers.lab_cli import containers, inspect, network
from tests.helpers.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(busybox_archive):
    with lab_with_blue(hosts=1, image=busybox_archive) as lab:
        yield lab


def networks(lab) -> list[dict]:
    """`network ls` as NAME and DRIVER of each row."""
    rows = [line.split() for line in lab.cli("network", "ls").stdout.splitlines()[1:]]
    return [{"name": row[1], "driver": row[2]} for row in rows]


def host_ports(lab, name: str) -> list[str]:
    return inspect(lab, name)["ports"]


def test_a_chosen_port_then_the_same_port_asked_for(lab):
    # The first ephemeral port is 32768: `-p 80` must not take it from `-p 32768:8080`.
    lab.cli("run", "-d", "--name", "ports1", "--network", "blue", "-p", "80", "-p", "32768:8080",
            BUSYBOX, "sleep", "3600")
    assert host_ports(lab, "ports1") == ["0.0.0.0:32769->80/tcp", "0.0.0.0:32768->8080/tcp"]
    lab.cli("rm", "-f", "ports1")


@pytest.mark.parametrize("argv", [
    ("run", "--bogus", "--name", "bad", BUSYBOX, "true"),
    ("run", "--nam", "bad", BUSYBOX, "true"),
    ("run", "--name", "bad", "-h"),
    ("run", "--name", "bad", "--pids-limit", "4294967296", BUSYBOX, "true"),
    ("stop", "-t", "-5", "bad"),
    ("ps", "--bogus"),
])
def test_an_unknown_or_wrong_option_never_exits_0_and_creates_nothing(lab, argv):
    result = lab.cli(*argv, check=False)
    assert result.returncode == 125, result
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert lab.cli("inspect", "bad", check=False).returncode != 0


def test_dash_h_is_the_hostname(lab):
    lab.cli("run", "-d", "--name", "hn1", "-h", "web1", "--network", "blue", BUSYBOX, "sleep", "3600")
    assert lab.cli("exec", "hn1", "--", "hostname").stdout.strip() == "web1"
    lab.cli("rm", "-f", "hn1")


def test_hostile_input_is_one_clear_line(lab):
    result = lab.cli("rm", "n" * 10_000, check=False)
    assert result.returncode != 0 and "not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    lab.cli("run", "-d", "--name", "nul1", "--network", "blue", BUSYBOX, "sleep", "3600")
    # No command line carries a NUL; any API client can.
    with grpc.insecure_channel(f"unix://{lab.controller_socket}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            list(pb_grpc.ControllerStub(channel).Exec(pb.ExecRequest(container="nul1", command=["echo", "a\0b"]),
                                                      timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "exec command argument 1 contains a NUL byte"
    lab.cli("rm", "-f", "nul1")


def test_a_stopped_container_releases_its_port_and_start_retakes_it_or_refuses(lab):
    lab.cli("run", "-d", "--name", "web1", "--network", "blue", "-p", "8080:80", BUSYBOX, "sleep", "3600")
    lab.cli("stop", "-t", "1", "web1")
    # Docker gives the port back on stop: another container may take it ...
    lab.cli("run", "-d", "--name", "web2", "--network", "blue", "-p", "8080:80", BUSYBOX, "sleep", "3600")
    # ... and the first one's start is then refused, saying why.
    refused = lab.cli("start", "web1", check=False)
    assert refused.returncode != 0
    assert ("cannot start container 'web1': host port 8080/tcp on host "
            f"'{lab.hosts[0].name}' is already published by container 'web2'") in refused.stderr
    assert inspect(lab, "web1")["state"] == "exited"
    lab.cli("rm", "-f", "web2")
    lab.cli("start", "web1")
    assert inspect(lab, "web1")["state"] == "running"
    assert host_ports(lab, "web1") == ["0.0.0.0:8080->80/tcp"]
    lab.cli("rm", "-f", "web1")


def test_network_rm_with_only_stopped_containers_attached(lab):
    lab.cli("network", "create", "--subnet", "10.78.0.0/24", "red")
    lab.cli("run", "-d", "--name", "redc", "--network", "red", "--network", "blue", BUSYBOX, "sleep", "3600")
    refused = lab.cli("network", "rm", "red", check=False)
    assert refused.returncode != 0 and "has active endpoints: redc" in refused.stderr
    lab.cli("stop", "-t", "1", "redc")
    lab.cli("network", "rm", "red")
    assert "red" not in inspect(lab, "redc")["networks"]
    lab.cli("start", "redc")
    assert list(inspect(lab, "redc")["networks"]) == ["blue"]
    lab.cli("rm", "-f", "redc")


def test_ps_quiet_newest_first_feeds_rm_of_several(lab):
    for name in ("q1", "q2", "q3"):
        lab.cli("run", "-d", "--name", name, "--network", "blue", BUSYBOX, "sleep", "3600")
    ids = {name: inspect(lab, name)["id"][:12] for name in ("q1", "q2", "q3")}
    listed = lab.cli("ps", "-q").stdout.split()
    assert [i for i in listed if i in ids.values()] == [ids["q3"], ids["q2"], ids["q1"]]
    names = [line.split()[1] for line in lab.cli("ps").stdout.splitlines()[1:]]
    assert [n for n in names if n in ids] == ["q3", "q2", "q1"]
    # Ids and unique id prefixes work where names do.
    assert inspect(lab, ids["q1"][:8])["name"] == "q1"
    # `ps -q | xargs rm -f`: several at once, one line each.
    removed = lab.cli("rm", "-f", *listed)
    assert set(ids.values()) <= set(removed.stdout.split())
    assert not {"q1", "q2", "q3"} & {c["name"] for c in containers(lab)}
    partly = lab.cli("rm", "-f", "ghost1", check=False)
    assert partly.returncode == 1 and "container 'ghost1' not found" in partly.stderr


def test_addresses_pools_ranges_static_and_internal(lab):
    # No --subnet: a free subnet of the default pools, clear of the hosts' own.
    lab.cli("network", "create", "--label", "env=lab", "--attachable", "auto")
    auto = network(lab, "auto")
    assert auto["subnet"] == "172.16.0.0/16" and auto["labels"] == {"env": "lab"} and auto["attachable"]
    assert lab.cli("network", "ls", "-q", "--filter", "label=env=lab").stdout.split() == [auto["id"][:12]]
    assert lab.cli("network", "ls", "-q", "--filter", "label=env=prod").stdout.split() == []
    # --ip-range, and --ip on run and on connect.
    lab.cli("network", "create", "--subnet", "10.80.0.0/24", "--ip-range", "10.80.0.128/25", "ranged")
    lab.cli("run", "-d", "--name", "r1", "--network", "ranged", BUSYBOX, "sleep", "3600")
    assert inspect(lab, "r1")["networks"]["ranged"]["ip"] == "10.80.0.129"
    lab.cli("run", "-d", "--name", "r2", "--network", "ranged", "--ip", "10.80.0.7", BUSYBOX, "sleep", "3600")
    lab.cli("network", "connect", "--ip", "172.16.0.9", "auto", "r2")
    assert {n: a["ip"] for n, a in inspect(lab, "r2")["networks"].items()} == {"ranged": "10.80.0.7",
                                                                            "auto": "172.16.0.9"}
    assert lab.cli("exec", "r1", "--", "ping", "-c", "1", "-W", "2", "10.80.0.7", check=False).returncode == 0
    taken = lab.cli("run", "-d", "--name", "r3", "--network", "ranged", "--ip", "10.80.0.7", BUSYBOX, "true",
                    check=False)
    assert taken.returncode != 0 and "address 10.80.0.7 is already in use on network 'ranged'" in taken.stderr
    lab.cli("rm", "-f", "r1", "r2")


def test_an_internal_network_has_no_way_out(lab):
    lab.cli("network", "create", "--internal", "--subnet", "10.81.0.0/24", "priv")
    lab.cli("run", "-d", "--name", "in1", "--network", "priv", BUSYBOX, "sleep", "3600")
    lab.cli("run", "-d", "--name", "in2", "--network", "priv", BUSYBOX, "sleep", "3600")
    lab.cli("run", "-d", "--name", "out1", "--network", "blue", BUSYBOX, "sleep", "3600")
    # The control: an ordinary overlay container reaches the lab's outside server.
    assert lab.cli("exec", "out1", "--", "nc", "-w", "3", lab.ext_ip, "8080", check=False).returncode == 0
    assert lab.cli("exec", "in1", "--", "nc", "-w", "3", lab.ext_ip, "8080", check=False).returncode != 0
    assert lab.cli("exec", "in1", "--", "ip", "route").stdout.count("default") == 0
    # Inside, it is a network like any other.
    assert lab.cli("exec", "in1", "--", "ping", "-c", "1", "-W", "2", "in2", check=False).returncode == 0
    lab.cli("rm", "-f", "in1", "in2", "out1")


def test_network_prune_removes_what_no_running_container_uses(lab):
    lab.cli("network", "create", "--subnet", "10.82.0.0/24", "unused")
    lab.cli("network", "create", "--subnet", "10.83.0.0/24", "used")
    lab.cli("run", "-d", "--name", "pr1", "--network", "used", BUSYBOX, "sleep", "3600")
    # Without -f it asks, and "no" keeps everything.
    kept = subprocess.run(lab.cli_argv("network", "prune"), input="n\n", capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=30)
    assert "Are you sure" in kept.stdout and "unused" in [n["name"] for n in networks(lab)]
    pruned = lab.cli("network", "prune", "-f").stdout.splitlines()
    assert pruned[0] == "Deleted Networks:" and "unused" in pruned[1:] and "used" not in pruned[1:]
    names = [n["name"] for n in networks(lab)]
    assert "used" in names and "blue" not in names and "bridge" in names   # blue was idle too
    lab.cli("rm", "-f", "pr1")
    lab.cli("network", "create", "--subnet", "10.77.0.0/24", "blue")


def vxmesh(lab, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI with the caller's environment given (for -e NAME)."""
    return subprocess.run(lab.cli_argv(*args), capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_a_foreground_run_streams_its_output_and_exits_with_its_code(lab):
    result = lab.cli("run", "--name", "fg1", "--network", "blue", BUSYBOX,
                     "sh", "-c", "echo out; echo err >&2; sleep 1; echo late; exit 3", check=False)
    assert result.returncode == 3, result
    # stdout and stderr share the container's log, in order.
    assert result.stdout == "out\nerr\nlate\n"
    assert inspect(lab, "fg1")["state"] == "exited"
    lab.cli("rm", "fg1")


def test_run_rm_generated_names_and_the_callers_environment(lab):
    before = {c["name"] for c in containers(lab)}
    result = vxmesh(lab, "run", "--rm", "-e", "GREETING", "-e", "UNSET_HERE", "--network", "blue", BUSYBOX,
                    "sh", "-c", 'echo "$GREETING|${UNSET_HERE-unset}|$HOSTNAME|$HOME"',
                    env={"GREETING": "hello from the caller"})
    assert result.returncode == 0, result
    greeting, unset, hostname, home = result.stdout.strip().split("|")
    assert (greeting, unset, home) == ("hello from the caller", "unset", "/root")
    # No --name: a generated one, which is also its host name; --rm took it away.
    adjective, sep, noun = hostname.partition("_")
    assert sep and adjective.isalpha() and noun.isalpha()
    assert {c["name"] for c in containers(lab)} == before


@pytest.mark.parametrize("command,status", [(("nosuchcommand",), 127), (("/etc/passwd",), 126)])
def test_a_command_that_cannot_run_exits_126_or_127(lab, command, status):
    before = {c["name"] for c in containers(lab)}
    result = lab.cli("run", "--rm", "--network", "blue", BUSYBOX, *command, check=False)
    assert result.returncode == status, result
    assert "Traceback" not in result.stderr
    assert {c["name"] for c in containers(lab)} == before     # --rm took the failed one away too


def test_publish_all_and_port(lab):
    lab.cli("run", "-d", "--name", "pa1", "--network", "blue", "-P", "--expose", "80", "--expose", "53/udp",
            "-p", "8081:8081", BUSYBOX, "sleep", "3600")
    lines = lab.cli("port", "pa1").stdout.splitlines()
    mapping = dict(line.split(" -> ") for line in lines)
    assert mapping["8081/tcp"] == "0.0.0.0:8081"
    assert set(mapping) == {"8081/tcp", "80/tcp", "53/udp"}
    assert all(32768 <= int(h.rsplit(":", 1)[1]) < 61000 for c, h in mapping.items() if c != "8081/tcp")
    assert lab.cli("port", "pa1", "80").stdout.strip() == mapping["80/tcp"]
    missing = lab.cli("port", "pa1", "9999", check=False)
    assert missing.returncode == 1 and "no public port '9999/tcp'" in missing.stderr
    lab.cli("rm", "-f", "pa1")


def test_the_scripting_surface(lab):
    import json
    lab.cli("run", "-d", "--name", "s-web", "--network", "blue", "--label", "tier=front", BUSYBOX, "sleep", "3600")
    lab.cli("run", "-d", "--name", "s-db", "--network", "blue", "--label", "tier=back", BUSYBOX, "sleep", "3600")
    lab.cli("run", "--name", "s-done", "--network", "blue", BUSYBOX, "true")
    # inspect: an array, several names, newest state; a missing one is an error line and exit 1.
    both = lab.cli("inspect", "s-web", "s-db", "s-nope", check=False)
    assert both.returncode == 1 and "container 's-nope' not found" in both.stderr
    assert [c["Name"] for c in json.loads(both.stdout)] == ["/s-web", "/s-db"]
    ip = inspect(lab, "s-web")["networks"]["blue"]["ip"]
    # Docker's templates, as scripts write them.
    assert lab.cli("inspect", "-f", "{{.Name}} {{.NetworkSettings.Networks.blue.IPAddress}}", "s-web").stdout \
        == f"/s-web {ip}\n"
    assert lab.cli("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "s-web").stdout \
        == f"{ip}\n"
    assert lab.cli("inspect", "-f", "{{.State.Status}}", "s-web", "s-done").stdout == "running\nexited\n"
    # ps --filter and --format.
    assert lab.cli("ps", "--filter", "label=tier=front", "--format", "{{.Names}}").stdout.split() == ["s-web"]
    assert lab.cli("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}").stdout.split() == ["s-done"]
    assert lab.cli("ps", "--filter", "name=s-", "--filter", "network=blue", "--format", "{{.Names}}").stdout.split() \
        == ["s-db", "s-web"]
    assert lab.cli("ps", "--filter", f"host={lab.hosts[0].name}", "-q").stdout.split()[:2] == \
        [inspect(lab, n)["id"][:12] for n in ("s-db", "s-web")]
    lines = lab.cli("ps", "--filter", "name=s-", "--format", "{{json .}}").stdout.splitlines()
    assert [json.loads(line)["Names"] for line in lines] == ["s-db", "s-web"]
    table = lab.cli("ps", "--filter", "name=s-web", "--format", "table {{.Names}}\\t{{.Status}}").stdout.splitlines()
    assert table[0].split() == ["NAMES", "STATUS"] and table[1].startswith("s-web") and "Up" in table[1]
    # The management-command forms, and ids where names go.
    assert lab.cli("container", "ls", "-q", "--filter", "name=s-db").stdout.split() == \
        [inspect(lab, "s-db")["id"][:12]]
    blue = network(lab, "blue")
    assert lab.cli("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
                   blue["id"][:10]).stdout == f"blue overlay {blue['subnet']}\n"
    assert lab.cli("network", "ls", "--filter", "name=blue", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").stdout \
        == "blue overlay swarm\n"
    # A network and a namespace owner by id prefix on run.
    lab.cli("run", "-d", "--name", "s-byid", "--network", blue["id"][:8], BUSYBOX, "sleep", "3600")
    lab.cli("run", "-d", "--name", "s-side", "--network", f"container:{inspect(lab, 's-byid')['id'][:8]}",
            BUSYBOX, "sleep", "3600")
    assert list(inspect(lab, "s-byid")["networks"]) == ["blue"]
    assert inspect(lab, "s-side")["network_mode"] == "container:s-byid"
    lab.cli("container", "rm", "-f", "s-side", "s-byid", "s-web", "s-db", "s-done")


def test_a_docker_users_lab_script(lab, tmp_path):
    """network create without a subnet, run with names and an alias, reach by
    name, a foreground --rm run, ps -q | xargs rm -f: as written for docker."""
    command = tmp_path / "vxmesh"   # `vxmesh` on the PATH, for xargs too, talking to this lab
    command.write_text(f'#!/bin/sh\ncd {REPO_ROOT} && exec {" ".join(lab.cli_argv())} "$@"\n')
    command.chmod(0o755)
    script = f"""
set -e
vxmesh network create labnet
vxmesh run -d --name server --network labnet --network-alias api {BUSYBOX} sleep 3600
vxmesh run -d --name client --network labnet {BUSYBOX} sleep 3600
vxmesh exec client ping -c 1 -W 2 server
vxmesh exec client ping -c 1 -W 2 api
vxmesh run --rm --network labnet {BUSYBOX} nslookup server | grep -q Address
vxmesh ps -q | xargs vxmesh rm -f
vxmesh network rm labnet
"""
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert [c["name"] for c in containers(lab) if c["state"] == "running"] == []


def test_run_detached_with_rm_is_removed_when_it_exits(lab):
    lab.cli("run", "-d", "--rm", "--name", "brief", "--network", "blue", BUSYBOX, "sleep", "1")
    wait_for(lambda: "brief" not in {c["name"] for c in containers(lab)}, 20, "brief to be removed after it exited")
    # The name is free again, once its host confirmed the teardown.
    wait_for(lambda: lab.cli("run", "-d", "--rm", "--name", "brief", "--network", "blue", BUSYBOX, "true",
                             check=False).returncode == 0, 20, "the name 'brief' to be free again")


def test_exec_with_input_and_a_terminal(lab):
    lab.cli("run", "-d", "--name", "it1", "--network", "blue", BUSYBOX, "sleep", "3600")
    # -i: standard input reaches the command, and its end ends it.
    piped = subprocess.run(lab.cli_argv("exec", "-i", "it1", "cat"), input="hello through stdin\n",
                           capture_output=True, text=True, cwd=REPO_ROOT, timeout=30)
    assert (piped.returncode, piped.stdout) == (0, "hello through stdin\n"), piped
    # -it from a terminal: the command gets one, keys go through, the exit code comes back.
    code, seen = terminal_session(lab.cli_argv("exec", "-it", "it1", "sh"),
                                  b"[ -t 0 ] && [ -t 1 ] && echo on-a-$((6 * 7))-tty; exit 5\r", timeout=30)
    assert code == 5, seen
    assert b"on-a-42-tty" in seen, seen
    lab.cli("rm", "-f", "it1")


def terminal_session(argv: list[str], typed: bytes, timeout: float = 60,
                     nudge: bytes = b"") -> tuple[int | None, bytes]:
    """`argv` run from a pseudo-terminal, as from a user's: once the shell's prompt
    shows, its cursor query is answered and `typed` is typed. Its exit code and
    everything the terminal showed. `nudge` is typed every second until a prompt
    shows (an attached shell shows none until it is asked for a new line)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO_ROOT, start_new_session=True)
    os.close(slave)
    seen, done = b"", False
    deadline = time.monotonic() + timeout
    nudged = time.monotonic()
    while proc.poll() is None and time.monotonic() < deadline:
        if nudge and not done and time.monotonic() - nudged > 1:
            os.write(master, nudge)
            nudged = time.monotonic()
        if select.select([master], [], [], 0.2)[0]:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
        if not done and b"# " in seen:
            os.write(master, b"\x1b[1;1R" + typed)
            done = True
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    os.close(master)
    return proc.returncode, seen


def test_run_interactive_passes_stdin_to_the_containers_own_process(lab):
    piped = subprocess.run(lab.cli_argv("run", "-i", "--rm", "--name", "runi1", "--network", "blue", BUSYBOX, "cat"),
                           input="hi\n", capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert (piped.returncode, piped.stdout) == (0, "hi\n"), piped
    assert "runi1" not in {c["name"] for c in containers(lab)}     # --rm
    # Control: without -i the first process's stdin is empty, as in Docker.
    closed = subprocess.run(lab.cli_argv("run", "--rm", "--network", "blue", BUSYBOX, "cat"),
                            input="hi\n", capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert (closed.returncode, closed.stdout) == (0, ""), closed
    # -it needs a terminal, as Docker says.
    refused = subprocess.run(lab.cli_argv("run", "-it", "--rm", "--network", "blue", BUSYBOX, "sh"),
                             input="", capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert (refused.returncode, refused.stderr.strip()) == (1, "Error: the input device is not a TTY"), refused


def test_run_it_gives_an_interactive_shell_from_a_terminal(lab):
    code, seen = terminal_session(
        lab.cli_argv("run", "-it", "--rm", "--name", "runit1", "--network", "blue", BUSYBOX, "sh"),
        b"[ -t 0 ] && [ -t 1 ] && echo on-a-$((6 * 7))-tty; exit 5\r")
    assert code == 5, seen
    assert b"on-a-42-tty" in seen, seen
    assert "runit1" not in {c["name"] for c in containers(lab)}     # --rm


def test_attach_gives_a_running_containers_output_from_now_and_your_input(lab):
    lab.cli("run", "-di", "--name", "att1", "--network", "blue", BUSYBOX, "sh", "-c", "echo before; exec cat")
    wait_for(lambda: lab.cli("logs", "att1").stdout == "before\n", 30, "att1's first line")
    attached = subprocess.run(lab.cli_argv("attach", "att1"), input="hello\n", capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=60)
    # What it wrote before is not shown again; the end of your input ends cat, and the
    # container's exit code is attach's.
    assert (attached.returncode, attached.stdout) == (0, "hello\n"), attached
    assert inspect(lab, "att1")["state"] == "exited"
    # logs --tail, as Docker's: the last lines, none, or all; a bad count refused.
    assert lab.cli("logs", "--tail", "1", "att1").stdout == "hello\n"
    assert lab.cli("logs", "-n", "0", "att1").stdout == ""
    assert lab.cli("logs", "--tail", "all", "att1").stdout == "before\nhello\n"
    bad = lab.cli("logs", "--tail", "-2", "att1", check=False)
    assert bad.returncode == 1 and "invalid --tail '-2': a number of lines, or all" in bad.stderr, bad
    # A stopped container cannot be attached to.
    stopped = lab.cli("attach", "att1", check=False)
    assert stopped.returncode == 1 and "you cannot attach to a stopped container" in stopped.stderr, stopped
    lab.cli("rm", "att1")


def test_start_attached_prints_that_runs_output_from_its_first_byte(lab):
    lab.cli("run", "-d", "--name", "sa1", "--network", "blue", BUSYBOX, "sh", "-c", "echo ran; exit 3")
    wait_for(lambda: inspect(lab, "sa1")["state"] == "exited", 30, "sa1's first run to end")
    again = lab.cli("start", "-a", "sa1", check=False)
    # Its output at once, and only this run's (the log holds both); its exit code.
    assert (again.returncode, again.stdout) == (3, "ran\n"), again
    assert lab.cli("logs", "sa1").stdout == "ran\nran\n"
    # -i: your input to a container run with -i, started again.
    lab.cli("run", "-di", "--name", "sa2", "--network", "blue", BUSYBOX, "cat")
    lab.cli("stop", "sa2")
    fed = subprocess.run(lab.cli_argv("start", "-ai", "sa2"), input="again\n", capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=60)
    assert (fed.returncode, fed.stdout) == (0, "again\n"), fed
    several = lab.cli("start", "-a", "sa1", "sa2", check=False)
    assert several.returncode == 1 and "cannot start and attach multiple containers at once" in several.stderr
    lab.cli("rm", "sa1", "sa2")


def test_attach_to_a_shell_run_with_dit(lab):
    lab.cli("run", "-dit", "--name", "att2", "--network", "blue", BUSYBOX, "sh")
    code, seen = terminal_session(lab.cli_argv("attach", "att2"),
                                  b"[ -t 0 ] && echo attached-$((6 * 7)); exit 4\r", nudge=b"\r")
    assert code == 4, seen
    assert b"attached-42" in seen, seen
    lab.cli("rm", "att2")


def test_run_dit_keeps_a_shell_waiting_on_its_terminal(lab):
    lab.cli("run", "-dit", "--name", "runit2", "--network", "blue", BUSYBOX, "sh")
    lab.cli("run", "-d", "--name", "runit3", "--network", "blue", BUSYBOX, "sh")   # control: no terminal
    time.sleep(3)
    states = {c["name"]: c["state"] for c in containers(lab)}
    assert (states["runit2"], states["runit3"]) == ("running", "exited"), states
    lab.cli("rm", "-f", "runit2", "runit3")
