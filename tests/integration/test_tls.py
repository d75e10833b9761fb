"""Certificates, mutual TLS and per-host authority.

Unit tests of `vxmesh certs` (files, modes, chains, names) and of the checks
a process makes on its own certificate; then attacks on a controller in this
process (its private etcd, TLS on a loopback port): each attack must fail,
next to a control that succeeds with the right certificate.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.__main__ import build_parser as agent_parser
from agent.config import AGENT
from cli import pki as certs
from proto import config_file as config
from controller.embedded_etcd import EmbeddedEtcd
from controller.etcd import Etcd, EtcdUnavailable
from controller.server import ControllerConfig, serve
from proto import cluster_registry, image_ref
from proto import vxmesh_pb2 as pb
from proto import vxmesh_pb2_grpc as pb_grpc
from transport.authz import refusal
from proto.records import ContainerStatus, Host
from transport.tls import Identity, Tls, TlsError, TlsFiles
from transport.channels import Transport
from tests.helpers.controller_ready import wait_healthy
from tests.helpers.images import BUSYBOX
from tests.helpers.lab import running_lab
from tests.helpers.registry import running_registry

REPO = Path(__file__).resolve().parents[2]


def vxmesh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def files(directory: Path, kind: str, name: str = certs.ADMIN_NAME) -> TlsFiles:
    return certs.files(directory, kind, name)


# ---- certificates ---------------------------------------------------------------------

def test_issued_certificates_chain_to_the_ca_with_private_keys(tmp_path):
    ca = tmp_path / "ca"
    assert vxmesh("certs", "init", "--dir", str(ca)).returncode == 0
    made = vxmesh("certs", "issue", "--dir", str(ca), "--host", "h1", "--ip", "10.0.0.11")
    assert made.returncode == 0 and made.stdout == f"made {ca}/agent-h1.pem (agent 'h1'; DNS:h1, IP:10.0.0.11)\n"
    assert vxmesh("certs", "issue", "--dir", str(ca), "--controller", "ctl", "--ip", "10.0.0.2").returncode == 0
    assert vxmesh("certs", "issue", "--dir", str(ca), "--admin").returncode == 0
    for key in ("ca-key.pem", "agent-h1-key.pem", "controller-ctl-key.pem", "admin-key.pem"):
        assert stat.S_IMODE((ca / key).stat().st_mode) == 0o600, key
    assert stat.S_IMODE((ca / "agent-h1.pem").stat().st_mode) == 0o644
    # openssl, independent of our code, agrees that each chains to the CA.
    for cert in ("agent-h1.pem", "controller-ctl.pem", "admin.pem"):
        verified = subprocess.run(["openssl", "verify", "-CAfile", str(ca / "ca.pem"), str(ca / cert)],
                                  capture_output=True, text=True)
        assert verified.returncode == 0 and verified.stdout.strip().endswith("OK"), verified.stderr

    def names(path: Path) -> tuple[list[str], list]:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        usage = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return [], usage
        return [str(n.value) for n in sans], usage

    assert names(ca / "agent-h1.pem") == (["h1", "10.0.0.11"], [ExtendedKeyUsageOID.SERVER_AUTH,
                                                               ExtendedKeyUsageOID.CLIENT_AUTH])
    assert names(ca / "controller-ctl.pem")[0] == ["ctl", "localhost", "127.0.0.1", "10.0.0.2"]
    assert names(ca / "admin.pem") == ([], [ExtendedKeyUsageOID.CLIENT_AUTH])
    assert Tls.load(files(ca, "agent", "h1"), ("agent",), "h1").identity == Identity("agent", "h1")
    assert Tls.load(files(ca, "admin"), ("admin",)).identity == Identity("admin", "admin")


def test_nothing_is_overwritten_unless_kept_on_purpose(tmp_path):
    first = certs.init_ca(tmp_path)
    certs.issue(tmp_path, "agent", "h1")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    refused = vxmesh("certs", "init", "--dir", str(tmp_path))
    assert refused.returncode == 1
    assert refused.stderr == (f"Error: {first.cert} already exists; refusing to overwrite it "
                              "(remove it first, or pass --if-missing to keep it)\n")
    assert vxmesh("certs", "issue", "--dir", str(tmp_path), "--host", "h1").returncode == 1
    kept = vxmesh("certs", "issue", "--dir", str(tmp_path), "--host", "h1", "--if-missing")
    assert kept.returncode == 0 and kept.stdout.startswith(f"kept {tmp_path}/agent-h1.pem")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # A key alone (its certificate lost) is not silently replaced either.
    (tmp_path / "agent-h1.pem").unlink()
    with pytest.raises(certs.CertError, match="agent-h1-key.pem exists without .*agent-h1.pem"):
        certs.issue(tmp_path, "agent", "h1", if_missing=True)


def test_bad_requests_name_the_problem_and_write_nothing(tmp_path):
    with pytest.raises(certs.CertError, match="no CA in"):
        certs.issue(tmp_path, "agent", "h1")
    certs.init_ca(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for role, name, ips, message in [("agent", "H_1", (), "invalid agent name 'H_1'"),
                                     ("agent", "h1", ("10.0.0.300",), "invalid IP address '10.0.0.300'"),
                                     ("wizard", "h1", (), "unknown certificate role 'wizard'"),
                                     ("admin", "root", (), "named 'admin'")]:
        with pytest.raises(certs.CertError, match=message):
            certs.issue(tmp_path, role, name, ips=ips)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_process_refuses_a_certificate_that_is_not_its_own(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for directory in (ours, theirs):
        certs.init_ca(directory)
        certs.issue(directory, "agent", "h1")
    certs.issue(ours, "admin")
    with pytest.raises(TlsError, match="is the certificate of agent 'h1', but this agent is named 'h2'"):
        Tls.load(files(ours, "agent", "h1"), ("agent",), "h2")
    with pytest.raises(TlsError, match="is an admin certificate; this needs a controller certificate"):
        Tls.load(files(ours, "admin"), ("controller",))
    foreign = TlsFiles(ours / "ca.pem", theirs / "agent-h1.pem", theirs / "agent-h1-key.pem")
    with pytest.raises(TlsError, match="is not signed by the CA"):
        Tls.load(foreign, ("agent",))
    mismatched = TlsFiles(ours / "ca.pem", ours / "agent-h1.pem", ours / "admin-key.pem")
    with pytest.raises(TlsError, match="is not the private key of"):
        Tls.load(mismatched, ("agent",))
    with pytest.raises(TlsError, match="cannot read the private key"):
        Tls.load(TlsFiles(ours / "ca.pem", ours / "agent-h1.pem", ours / "nope.pem"), ("agent",))
    # The key never shows up in what a process prints about its TLS material.
    material = Tls.load(files(ours, "agent", "h1"), ("agent",))
    assert b"PRIVATE KEY" in material.key and "PRIVATE" not in repr(material)
    assert "PRIVATE" not in Transport(material).description


def test_plain_text_only_when_asked_for_and_then_with_a_warning(tmp_path, caplog):
    from agent.main import AgentConfig, agent_transport
    from controller.server import controller_transport
    with pytest.raises(TlsError, match="needs its CA, certificate and key .* or insecure = true"):
        controller_transport(ControllerConfig())
    agent = AgentConfig(name="h2", controllers=["192.0.2.1:7946"], vtep_ip="192.0.2.12", api="192.0.2.12:7947")
    with pytest.raises(TlsError, match="or insecure = true"):
        agent_transport(agent)
    certs.init_ca(tmp_path)
    certs.issue(tmp_path, "agent", "h1")
    agent.tls = files(tmp_path, "agent", "h1")
    with pytest.raises(TlsError, match="certificate of agent 'h1', but this agent is named 'h2'"):
        agent_transport(agent)
    agent.name = "h1"
    assert agent_transport(agent).tls.identity == Identity("agent", "h1")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    agent.insecure = True
    assert agent_transport(agent).tls is None
    assert controller_transport(ControllerConfig(insecure=True)).tls is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and all("WITHOUT TLS (insecure)" in w for w in warnings)


def test_who_may_call_what():
    admin, agent, ctl = Identity("admin", "admin"), Identity("agent", "h1"), Identity("controller", "c")
    controller_api, link, host_api = ("/vxmesh.v1.Controller/Run", "/vxmesh.v1.AgentLink/Connect",
                                      "/vxmesh.v1.HostAgent/Exec")
    assert refusal(controller_api, admin) is None
    assert "agent 'h1' may not call Controller" in refusal(controller_api, agent)
    assert refusal(link, agent) is None and refusal(link, admin) is not None
    assert refusal(host_api, ctl) is None and refusal(host_api, admin) is None
    assert refusal(host_api, agent) is not None
    assert "needs a vxmesh client certificate" in refusal(controller_api, None)
    assert refusal(controller_api, None, local=True) is None
    assert "not a vxmesh service" in refusal("/grpc.reflection.v1.ServerReflection/Info", admin)


def test_insecure_is_a_boolean_option_and_a_switch(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('insecure = "yes"\n')
    with pytest.raises(config.ConfigError, match="key 'insecure' must be a boolean"):
        config.read_file(AGENT, path)
    path.write_text("insecure = true\n")
    assert config.read_file(AGENT, path) == {"insecure": True}
    args = agent_parser().parse_args(["--insecure"])
    assert config.given_flags(args, AGENT) == {"insecure": True}
    assert config.given_flags(agent_parser().parse_args([]), AGENT) == {}


# ---- attacks on a controller ----------------------------------------------------------

pytestmark_async = pytest.mark.asyncio(loop_scope="module")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self, work: Path, address: str):
        self.work = work
        self.address = address
        self.ca = work / "ca"

    def channel(self, role: str, name: str = certs.ADMIN_NAME, directory: Path | None = None) -> grpc.aio.Channel:
        """A client with `role` `name`'s certificate; from `directory`'s CA instead of ours if given."""
        if directory is None:
            return Transport(Tls.load(files(self.ca, role, name), (role,))).channel(self.address)
        theirs = files(directory, role, name)
        creds = grpc.ssl_channel_credentials(root_certificates=(self.ca / "ca.pem").read_bytes(),
                                             private_key=theirs.key.read_bytes(),
                                             certificate_chain=theirs.cert.read_bytes())
        return grpc.aio.secure_channel(self.address, creds)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(busybox_layout):
    work = Path(tempfile.mkdtemp(prefix="vxmesh-test-tls-"))
    address = f"127.0.0.1:{free_port()}"
    ca = work / "ca"
    certs.init(ca)
    certs.issue(ca, "controller", "ctl")
    certs.issue(ca, "etcd-client", "ctl")
    certs.issue(ca, "admin")
    for host in ("h1", "h2"):
        certs.issue(ca, "agent", host)
    other = work / "other-ca"
    certs.init_ca(other)
    certs.issue(other, "admin")
    # `run` resolves its image in the cluster's registry: one on loopback, with busybox in it.
    images = contextlib.ExitStack()
    registry = images.enter_context(running_registry(pki_dir=ca, own_namespace=False))
    registry.push(busybox_layout, "latest",
                  cluster_registry.location(image_ref.parse(BUSYBOX), registry.host).repository + ":latest")
    task = asyncio.create_task(serve(ControllerConfig(
        listen=[address, f"unix://{work}/ctl.sock"], data_dir=work / "etcd", host_ttl=3,
        tls=files(ca, "controller", "ctl"), etcd_tls=files(ca, "etcd-client", "ctl"), registry=registry.host)))
    env = Cluster(work, address)
    admin = env.channel("admin")
    try:
        def serving() -> None:
            if task.done():
                task.result()  # raises what stopped the controller
        assert await wait_healthy(pb_grpc.ControllerStub(admin), 60, serving), "the controller never got healthy"
        yield env
    finally:
        await admin.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        images.close()
        shutil.rmtree(work, ignore_errors=True)


async def call_list_hosts(channel: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await pb_grpc.ControllerStub(channel).ListHosts(pb.Empty(), timeout=5)
    except grpc.aio.AioRpcError as err:
        return err.code()
    finally:
        await channel.close()
    return grpc.StatusCode.OK


def hello(name: str) -> pb.AgentMessage:
    return pb.AgentMessage(hello=pb.Hello(host=Host(name=name, vtep="192.0.2.1", api="192.0.2.1:7947").to_wire()))


async def first_update(call) -> pb.ViewUpdate:
    while True:
        message = await asyncio.wait_for(call.read(), 10)
        if message.WhichOneof("kind") == "update":
            return message.update


@pytestmark_async
async def test_a_client_without_a_certificate_is_refused_at_the_handshake(cluster):
    bare = grpc.aio.secure_channel(cluster.address, grpc.ssl_channel_credentials(
        root_certificates=(cluster.ca / "ca.pem").read_bytes()))
    assert await call_list_hosts(bare) == grpc.StatusCode.UNAVAILABLE
    plain = grpc.aio.insecure_channel(cluster.address)
    assert await call_list_hosts(plain) == grpc.StatusCode.UNAVAILABLE
    assert await call_list_hosts(cluster.channel("admin")) == grpc.StatusCode.OK


@pytestmark_async
async def test_a_certificate_from_another_ca_is_refused_at_the_handshake(cluster):
    foreign = cluster.channel("admin", directory=cluster.work / "other-ca")
    assert await call_list_hosts(foreign) == grpc.StatusCode.UNAVAILABLE


@pytestmark_async
async def test_an_agent_certificate_cannot_use_the_user_api(cluster):
    agent = cluster.channel("agent", "h1")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.ControllerStub(agent).CreateNetwork(pb.CreateNetworkRequest(
                name="stolen", subnet="10.66.0.0/24"), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "agent 'h1' may not call Controller" in err.value.details()
    finally:
        await agent.close()
    admin = pb_grpc.ControllerStub(cluster.channel("admin"))
    names = [n.name for n in (await admin.ListNetworks(pb.Empty(), timeout=5)).networks]
    assert "stolen" not in names
    # The admin may, and an admin certificate cannot pose as an agent.
    assert await call_list_hosts(cluster.channel("admin")) == grpc.StatusCode.OK
    link = pb_grpc.AgentLinkStub(cluster.channel("admin")).Connect(timeout=10)
    await link.write(hello("h1"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await first_update(link)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytestmark_async
async def test_an_agent_registers_only_as_the_host_its_certificate_names(cluster):
    admin = pb_grpc.ControllerStub(cluster.channel("admin"))
    h1 = cluster.channel("agent", "h1")
    try:
        impostor = pb_grpc.AgentLinkStub(h1).Connect(timeout=10)
        await impostor.write(hello("h2"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await first_update(impostor)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "certificate is for host 'h1'; it cannot register as 'h2'" in err.value.details()
        assert "h2" not in [h.name for h in (await admin.ListHosts(pb.Empty(), timeout=5)).hosts]

        honest = pb_grpc.AgentLinkStub(h1).Connect(timeout=10)
        await honest.write(hello("h1"))
        assert (await first_update(honest)).snapshot
        hosts = {h.name: h.state for h in (await admin.ListHosts(pb.Empty(), timeout=5)).hosts}
        assert hosts.get("h1") == "up"
        honest.cancel()
    finally:
        await h1.close()


async def report_running_when_placed(call, name: str) -> pb.ContainerSpec:
    """Play the agent: wait for the container in the stream, report it running."""
    while True:
        message = await asyncio.wait_for(call.read(), 20)
        if message.WhichOneof("kind") != "update":
            continue
        for change in message.update.changes:
            if change.WhichOneof("record") == "container" and change.container.name == name:
                spec = change.container
                await call.write(pb.AgentMessage(status=ContainerStatus(
                    name=name, id=spec.id, state="running", pid=4242, generation=spec.generation).to_wire()))
                return spec


@pytestmark_async
async def test_an_agent_cannot_report_for_another_hosts_container_nor_see_its_table(cluster):
    admin = pb_grpc.ControllerStub(cluster.channel("admin"))
    channels = {h: cluster.channel("agent", h) for h in ("h1", "h2")}
    try:
        streams = {}
        for host, channel in channels.items():
            streams[host] = pb_grpc.AgentLinkStub(channel).Connect(timeout=60)
            await streams[host].write(hello(host))
            await first_update(streams[host])
        specs = {}
        for host, container in (("h2", "victim"), ("h1", "own")):
            run = asyncio.ensure_future(admin.Run(pb.RunRequest(
                name=container, host=host, networks=["none"], image=BUSYBOX, command=["sleep", "1"]),
                timeout=30))
            specs[container] = await report_running_when_placed(streams[host], container)
            assert (await run).status.state == "running"

        # h1 claims h2's container died, then reports its own container exiting:
        # reports on one stream are handled in order, so once the second shows,
        # the first was dealt with.
        victim = specs["victim"]
        await streams["h1"].write(pb.AgentMessage(status=ContainerStatus(
            name="victim", id=victim.id, state="exited", exit_code=137, generation=victim.generation).to_wire()))
        await streams["h1"].write(pb.AgentMessage(status=ContainerStatus(
            name="victim", id=victim.id, state="removed", generation=victim.generation).to_wire()))
        own = specs["own"]
        await streams["h1"].write(pb.AgentMessage(status=ContainerStatus(
            name="own", id=own.id, state="exited", exit_code=3, generation=own.generation).to_wire()))
        for _ in range(100):
            if (await admin.Inspect(pb.NameRequest(name="own"), timeout=5)).status.state == "exited":
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("h1's report on its own container never arrived")
        attacked = await admin.Inspect(pb.NameRequest(name="victim"), timeout=5)
        assert (attacked.spec.host, attacked.status.state, attacked.status.pid) == ("h2", "running", 4242)

        # h1's own view never held h2's container: a fresh snapshot shows it.
        again = pb_grpc.AgentLinkStub(channels["h1"]).Connect(timeout=10)
        await again.write(hello("h1"))
        snapshot = await first_update(again)
        containers = {c.container.name for c in snapshot.changes if c.WhichOneof("record") == "container"}
        assert containers == {"own"}
        again.cancel()
        for stream in streams.values():
            stream.cancel()
    finally:
        for channel in channels.values():
            await channel.close()


def pki_of_a_cluster(directory: Path) -> Path:
    """Both CAs and a certificate of every kind: controller ctl, agent h1, the admin."""
    certs.init(directory)
    for kind, name in (("controller", "ctl"), ("etcd-client", "ctl"), ("agent", "h1"), ("admin", "admin")):
        certs.issue(directory, kind, name)
    return directory


@pytestmark_async
async def test_the_private_etcd_admits_the_controllers_etcd_certificate_only(tmp_path):
    ca = pki_of_a_cluster(tmp_path / "ca")
    controller = files(ca, "etcd-client", "ctl")
    async with EmbeddedEtcd(tmp_path / "etcd", tls=controller) as etcd:
        assert etcd.endpoint.startswith("https://127.0.0.1:")
        async with await etcd.connect() as client:   # the control: the controller's etcd certificate
            await client.put("/probe", b"1")
        # Every certificate of the cluster CA, the controller's own gRPC one too, is
        # refused, even verifying etcd with the (public) etcd CA certificate.
        for kind, name in (("agent", "h1"), ("admin", "admin"), ("controller", "ctl")):
            held = files(ca, kind, name)
            with pytest.raises(EtcdUnavailable):
                await Etcd.connect([etcd.endpoint], timeout=2, ca=controller.ca, cert=held.cert, key=held.key)
        with pytest.raises(EtcdUnavailable):          # no client certificate
            await Etcd.connect([etcd.endpoint], timeout=2, ca=controller.ca)
        with pytest.raises(EtcdUnavailable):          # plain HTTP
            await Etcd.connect([etcd.endpoint.replace("https", "http")], timeout=2)
    assert stat.S_IMODE((tmp_path / "etcd").stat().st_mode) == 0o700   # it holds every container's env


@pytestmark_async
async def test_an_etcd_trusting_the_cluster_ca_would_take_an_agents_certificate(tmp_path):
    """The control of the test above: the same agent certificate, against an etcd
    set up the old way (trusting the cluster CA), reads and writes any key."""
    ca = pki_of_a_cluster(tmp_path / "ca")
    old_way = files(ca, "controller", "ctl")
    agent = files(ca, "agent", "h1")
    async with EmbeddedEtcd(tmp_path / "etcd", tls=old_way) as etcd:
        async with await Etcd.connect([etcd.endpoint], timeout=5, ca=agent.ca, cert=agent.cert,
                                      key=agent.key) as client:
            await client.put("/vxmesh/containers/anything", b"{}")
            assert (await client.get("/vxmesh/containers/anything")).value == b"{}"


def test_a_controller_refuses_an_etcd_ca_that_is_the_cluster_ca(tmp_path):
    from controller.server import etcd_client_tls
    ca = pki_of_a_cluster(tmp_path / "ca")
    config = ControllerConfig(tls=files(ca, "controller", "ctl"), etcd=["https://192.0.2.1:2379"],
                              etcd_tls=files(ca, "etcd-client", "ctl"))
    assert etcd_client_tls(config) == files(ca, "etcd-client", "ctl")      # the control
    for etcd_tls in (files(ca, "controller", "ctl"), files(ca, "agent", "h1")):
        with pytest.raises(TlsError, match=f"etcd-ca {ca}/ca.pem is the cluster CA {ca}/ca.pem: "
                                           "etcd must trust a CA of its own"):
            etcd_client_tls(ControllerConfig(tls=config.tls, etcd_tls=etcd_tls))
    mixed = TlsFiles(ca / "etcd" / "ca.pem", ca / "controller-ctl.pem", ca / "controller-ctl-key.pem")
    with pytest.raises(TlsError, match="controller-ctl.pem is not signed by the CA .*/etcd/ca.pem"):
        etcd_client_tls(ControllerConfig(tls=config.tls, etcd_tls=mixed))
    # Plain-text etcd endpoints, or no TLS at all, need no etcd files.
    assert etcd_client_tls(ControllerConfig(tls=config.tls, etcd=["http://192.0.2.1:2379"])) is None
    assert etcd_client_tls(ControllerConfig(insecure=True)) is None


@pytestmark_async
async def test_the_unix_socket_is_the_local_root_channel(cluster):
    sock = cluster.work / "ctl.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert await call_list_hosts(grpc.aio.insecure_channel(f"unix://{sock}")) == grpc.StatusCode.OK


# ---- the namespace lab: every TCP listener is mutual TLS ----------------------------------

# Runs in a lab namespace: call `method` of a host's HostAgent API at `address`
# holding the given certificate files ("" for none, "plain" for no TLS at all);
# prints the status code name, or OK and the output.
HOST_AGENT_CALL = """
import asyncio, sys, grpc
from proto import vxmesh_pb2 as pb, vxmesh_pb2_grpc as pb_grpc
address, server_name, ca, cert, key, container = sys.argv[1:7]
async def main():
    if ca == "plain":
        channel = grpc.aio.insecure_channel(address)
    else:
        read = lambda p: open(p, "rb").read() if p else None
        creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
        channel = grpc.aio.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", server_name)])
    try:
        out = b""
        async for chunk in pb_grpc.HostAgentStub(channel).Exec(
                pb.ExecRequest(container=container, command=["echo", "inside"]), timeout=10):
            out += chunk.stdout
        print("OK", out.decode().strip())
    except grpc.aio.AioRpcError as err:
        print(err.code().name, err.details())
    await channel.close()
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def tls_lab(busybox_archive):
    with running_lab(hosts=2, image=busybox_archive, etcd_members=1) as lab:
        lab.cli("run", "-d", "--name", "t1", "--host", lab.hosts[0].name, "--network", "none", BUSYBOX,
                "sleep", "infinity")
        yield lab


@pytest.mark.integration
def test_the_lab_cli_on_tcp_needs_an_admin_certificate(tls_lab):
    h1, h2 = tls_lab.hosts
    listed = tls_lab.netns_exec(h2.netns, *tls_lab.tls_cli_argv("host", "ls", "--format", "json"))
    assert {h["name"]: h["state"] for h in json.loads(listed.stdout)} == {h1.name: "up", h2.name: "up"}
    as_agent = tls_lab.netns_exec(h2.netns, *tls_lab.tls_cli_argv("network", "create", "--subnet", "10.66.0.0/24",
                                                                  "stolen", role="agent", name=h2.name),
                                  check=False)
    assert as_agent.returncode == 1
    assert as_agent.stderr == (f"Error: agent {h2.name!r} may not call Controller; "
                               "that needs an admin certificate\n")
    plain = tls_lab.netns_exec(h2.netns, sys.executable, "-m", "cli.main", "--controller", "10.231.0.2:7946",
                               "--insecure", "host", "ls", check=False)
    assert plain.returncode == 1 and "cannot reach the controller" in plain.stderr
    assert "stolen" not in tls_lab.cli("network", "ls").stdout


@pytest.mark.integration
def test_a_hosts_api_answers_only_the_controller_and_admins(tls_lab):
    h1, h2 = tls_lab.hosts
    tls = tls_lab.tls_dir

    def call(ca: str, role: str = "", name: str = "admin") -> str:
        held = files(tls, role, name) if role else None
        proc = tls_lab.netns_exec(h2.netns, sys.executable, "-c", HOST_AGENT_CALL, h1.api, h1.name, ca,
                                  str(held.cert) if held else "", str(held.key) if held else "", "t1")
        return proc.stdout.strip()

    ca = str(tls / "ca.pem")
    assert call(ca, "agent", h2.name).startswith(
        f"PERMISSION_DENIED agent {h2.name!r} may not call HostAgent")   # a neighbour host
    assert call(ca, "agent", h1.name).startswith("PERMISSION_DENIED")  # even the host's own certificate
    assert call(ca).startswith("UNAVAILABLE")                          # no client certificate
    assert call("plain").startswith("UNAVAILABLE")                     # no TLS at all
    assert call(ca, "admin") == "OK inside"                            # the control
    # And the controller reaches it with its own certificate, for `vxmesh exec`.
    assert tls_lab.cli("exec", "t1", "--", "echo", "via-controller").stdout == "via-controller\n"


@pytest.mark.integration
def test_etcd_wants_a_client_certificate_from_the_ca(tls_lab):
    member = tls_lab.etcd_members[0]
    bare = tls_lab.netns_exec(tls_lab.ctl_ns, "etcdctl", "--endpoints", member.client_url, "--dial-timeout", "2s",
                              "--command-timeout", "3s", "--cacert", str(tls_lab.tls_dir / "etcd" / "ca.pem"),
                              "get", "--prefix", "/vxmesh/hosts/", check=False, timeout=30)
    assert bare.returncode != 0
    plain = tls_lab.netns_exec(tls_lab.ctl_ns, "etcdctl", "--endpoints", f"http://{member.address}:2379",
                               "--dial-timeout", "2s", "--command-timeout", "3s", "get", "--prefix",
                               "/vxmesh/hosts/", check=False, timeout=30)
    assert plain.returncode != 0
    held = tls_lab.etcdctl("get", "--prefix", "--keys-only", "/vxmesh/hosts/")   # the controller's certificate
    assert f"/vxmesh/hosts/{tls_lab.hosts[0].name}" in held.stdout


def etcdctl_as(lab, netns: str | None, endpoint: str, ca: Path, held: TlsFiles,
               *args: str) -> subprocess.CompletedProcess:
    """etcdctl holding `held`'s certificate, verifying etcd with `ca`, from a lab
    namespace (None: this one)."""
    argv = ["etcdctl", "--endpoints", endpoint, "--dial-timeout", "3s", "--command-timeout", "5s",
            "--cacert", str(ca), "--cert", str(held.cert), "--key", str(held.key), *args]
    if netns is not None:
        return lab.netns_exec(netns, *argv, check=False, timeout=30)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def keyspace(lab) -> tuple[int, list]:
    reply = json.loads(lab.etcdctl("get", "--prefix", "/vxmesh/", "-w", "json").stdout)
    return reply["header"]["revision"], sorted((kv["key"], kv["value"], kv["mod_revision"]) for kv in reply["kvs"])


# What a stolen certificate would write: a container for another host, running a command as root there.
FORGED = ("put", "/vxmesh/containers/forged", json.dumps({"name": "forged", "command": ["sh", "-c", "id"]}))


@pytest.mark.integration
def test_agent_and_admin_certificates_cannot_reach_etcd(tls_lab):
    """etcd is for controllers only: an agent's and the admin's certificates are
    refused at the TLS handshake, for reads and writes alike, even when the
    etcd CA's (public) certificate is used to verify the member; the
    controller's etcd client certificate works (the control)."""
    h1, h2 = tls_lab.hosts
    member = tls_lab.etcd_members[0]
    member_log = tls_lab.log_path(member.role)
    etcd_ca = tls_lab.tls_dir / "etcd" / "ca.pem"
    before = keyspace(tls_lab)
    for netns, source, held in ((h1.netns, h1.underlay_ip, files(tls_lab.tls_dir, "agent", h1.name)),
                                (h2.netns, h2.underlay_ip, files(tls_lab.tls_dir, "agent", h2.name)),
                                (tls_lab.ctl_ns, tls_lab.controller_ip(), files(tls_lab.tls_dir, "admin"))):
        for command in (("get", "--prefix", "/vxmesh/"), FORGED):
            logged = member_log.stat().st_size
            refused = etcdctl_as(tls_lab, netns, member.client_url, etcd_ca, held, *command)
            assert refused.returncode != 0 and refused.stdout == "", (held.cert, command, refused.stdout)
            # The member says why: the handshake failed on the client's certificate.
            with member_log.open() as log:
                log.seek(logged)
                rejections = [json.loads(line) for line in log if '"rejected connection"' in line]
            assert any(r["remote-addr"].startswith(f"{source}:") and
                       r["error"] == "tls: failed to verify client certificate: x509: certificate signed by "
                                     "unknown authority" for r in rejections), rejections
    assert keyspace(tls_lab) == before
    controller = files(tls_lab.tls_dir, "etcd-client", tls_lab.controller_cert_name())
    held = etcdctl_as(tls_lab, tls_lab.ctl_ns, member.client_url, etcd_ca, controller,
                      "get", "--prefix", "--keys-only", "/vxmesh/hosts/")
    assert held.returncode == 0 and f"/vxmesh/hosts/{h1.name}" in held.stdout, held.stderr


@pytest.mark.integration
def test_the_same_agent_certificate_reaches_an_etcd_that_trusts_the_cluster_ca(tls_lab, tmp_path):
    """The control of the test above, with the lab's own agent certificate and
    the same etcdctl command: an etcd member set up the old way (trusting the
    cluster CA, on this namespace's loopback) lets it read and write any key."""
    h1 = tls_lab.hosts[0]
    agent = files(tls_lab.tls_dir, "agent", h1.name)
    old_way = files(tls_lab.tls_dir, "controller", tls_lab.controller_cert_name())

    async def attack() -> list[subprocess.CompletedProcess]:
        async with EmbeddedEtcd(tmp_path / "etcd", tls=old_way) as etcd:
            return [await asyncio.to_thread(etcdctl_as, tls_lab, None, etcd.endpoint, agent.ca, agent, *command)
                    for command in (FORGED, ("get", "--print-value-only", FORGED[1]))]

    wrote, read = asyncio.run(attack())
    assert wrote.returncode == 0 and wrote.stdout.strip() == "OK", wrote.stderr
    assert read.returncode == 0 and json.loads(read.stdout)["name"] == "forged", read.stderr


@pytest.mark.integration
def test_private_keys_appear_in_no_log_and_no_output(tls_lab):
    keys = [p for p in tls_lab.tls_dir.rglob("*-key.pem")]
    # The base64 body of each key, line by line: any of it in a log would be a leak.
    secrets = {line for p in keys for line in p.read_text().splitlines() if not line.startswith("-----")}
    outputs = [tls_lab.cli("inspect", "t1").stdout, tls_lab.cli("ps", "-a", "--format", "json").stdout,
               tls_lab.cli("host", "ls", "--format", "json").stdout]
    logs = [p.read_text(errors="replace") for p in (tls_lab.state_dir / "logs").iterdir()]
    for text in outputs + logs:
        assert "PRIVATE KEY" not in text
        assert not any(secret in text for secret in secrets)
