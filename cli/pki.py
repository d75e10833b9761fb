"""The cluster's certificates: two CAs, and a certificate per identity they sign.

An identity is a role and a name. The role sits in the subject's OU and
decides what the holder may call (transport/authz.py); the name is the CN and a
DNS subject alternative name, and is what an agent may register as.

Two CAs, so that etcd is for controllers only. etcd's client-certificate
authentication admits any certificate its CA signed, with every key
readable and writable: if etcd trusted the cluster CA, an agent's
certificate could write another host's containers/ records and run any
command there. So etcd trusts a CA of its own, which signs the members'
certificates and the controllers' etcd client certificates, and nothing an
agent or an admin holds:

    kind         CA       files in the directory                 SANs                    usage
    agent        cluster  agent-NAME.pem  agent-NAME-key.pem     DNS:NAME, --ip, --dns   server + client
    controller   cluster  controller-NAME.pem ...                DNS:NAME, DNS:localhost, server + client
                                                                 IP:127.0.0.1, --ip, --dns
    admin        cluster  admin.pem  admin-key.pem               none                    client (the CLI)
    etcd         etcd     etcd/etcd-NAME.pem ...                 as the controller's     server + client (peers)
    etcd-client  etcd     etcd/controller-NAME.pem ...           as the controller's     client (+ server: the
                                                                                         controller's private etcd)

The cluster CA is ca.pem and ca-key.pem in the directory, the etcd CA
etcd/ca.pem and etcd/ca-key.pem: each CA's directory holds what it signed,
so no file name of one can be taken for one of the other. Agents serve the
HostAgent API to the controller, so they are servers too; the controller
calls agents and etcd, so it is a client too. localhost is in the
controller's names because a client on a unix socket verifies that name; a
controller's etcd client certificate also serves its private etcd on
loopback (controller/embedded_etcd.py), which trusts the etcd CA alone.

Keys are ECDSA P-256 (fast to make, understood by gRPC and etcd's Go TLS)
and are written with mode 0600, in directories of mode 0700
(proto/private_files.py). No file is ever overwritten: an existing one is
an error, or, with `if_missing`, kept (after checking it is signed by the
CA it belongs to), so a provisioning script can run again. Runs on one
directory are serialised with a lock on the directory itself, so parallel
runs (Vagrant bringing VMs up at once) share the CAs.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from proto import validate
from proto.errors import InvalidArgument
from proto.private_files import FILE_MODE, private_dir
from transport.tls import ORGANIZATION, TlsFiles, chains_to, key_matches

ADMIN_NAME = "admin"
CA_DAYS = 3650
CERT_DAYS = 825
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CLUSTER_CA = "cluster"   # signs agents, controllers (gRPC) and admins
ETCD_CA = "etcd"         # signs etcd members and the controllers' etcd client certificates
ETCD_DIR = "etcd"        # the etcd CA's directory, inside the cluster CA's


@dataclass(frozen=True)
class Kind:
    """What a certificate is for: which CA signs it, its subject's role, how it is used."""
    role: str          # the subject's OU: one of transport.tls.ROLES
    authority: str     # CLUSTER_CA or ETCD_CA
    server: bool       # also serves TLS (the others only present it as clients)
    local: bool        # reached on loopback or a unix socket: answers to localhost too


KINDS = {
    "agent": Kind("agent", CLUSTER_CA, server=True, local=False),
    "controller": Kind("controller", CLUSTER_CA, server=True, local=True),
    "admin": Kind("admin", CLUSTER_CA, server=False, local=False),
    "etcd": Kind("etcd", ETCD_CA, server=True, local=True),
    "etcd-client": Kind("controller", ETCD_CA, server=True, local=True),
}


class CertError(Exception):
    """A certificate that cannot be made or used; the message names the file or value."""


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    created: bool          # False: both existed and were kept (if_missing)
    role: str
    name: str
    sans: tuple[str, ...]  # as shown to the user: "DNS:h1", "IP:10.0.0.1"


def ca_dir(directory: Path, authority: str) -> Path:
    """The directory holding `authority`'s CA and what it signed."""
    return Path(directory) if authority == CLUSTER_CA else Path(directory) / ETCD_DIR


def files(directory: Path, kind: str, name: str = ADMIN_NAME) -> TlsFiles:
    """The CA certificate, certificate and key a holder of `kind` `name` uses."""
    found = KINDS[kind]
    where = ca_dir(directory, found.authority)
    cert, key = ((f"{ADMIN_NAME}.pem", f"{ADMIN_NAME}-key.pem") if found.role == "admin"
                 else (f"{found.role}-{name}.pem", f"{found.role}-{name}-key.pem"))
    return TlsFiles(where / CA_FILE, where / cert, where / key)


# ---- making ----------------------------------------------------------------------

def init(directory: Path, *, if_missing: bool = False, days: int = CA_DAYS) -> list[Issued]:
    """Make both CAs: the cluster's (DIR/ca.pem) and etcd's (DIR/etcd/ca.pem)."""
    return [init_ca(directory, authority, if_missing=if_missing, days=days) for authority in (CLUSTER_CA, ETCD_CA)]


def init_ca(directory: Path, authority: str = CLUSTER_CA, *, if_missing: bool = False,
            days: int = CA_DAYS) -> Issued:
    """Make `authority`'s CA (ca.pem, ca-key.pem in its directory)."""
    where = private_dir(ca_dir(directory, authority))
    with _locked(where):
        cert_path, key_path = where / CA_FILE, where / CA_KEY_FILE
        if _existing_pair(cert_path, key_path, if_missing):
            _load_ca(directory, authority)  # refuses a CA whose key does not match
            return Issued(cert_path, key_path, False, "ca", authority, ())
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"vxmesh {authority} CA")])
        now = _now()
        cert = (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True, crl_sign=True,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _publish_pair(cert_path, cert, key_path, key)
        return Issued(cert_path, key_path, True, "ca", authority, ())


def issue(directory: Path, kind: str, name: str = ADMIN_NAME, *, ips: Sequence[str] = (),
          dns: Sequence[str] = (), if_missing: bool = False, days: int = CERT_DAYS) -> Issued:
    """Sign a certificate of `kind` (a key of KINDS) for `name` with the CA it belongs to."""
    found, name, sans = _checked_request(kind, name, ips, dns)
    paths = files(directory, kind, name)
    where = paths.ca.parent
    if not where.is_dir():
        raise CertError(f"no CA in {where}: run `vxmesh certs init --dir {directory}` first")
    with _locked(where):
        ca_cert, ca_key = _load_ca(directory, found.authority)
        shown = tuple(_show(san) for san in sans)
        if _existing_pair(paths.cert, paths.key, if_missing):
            existing = load_cert(paths.cert)
            if not chains_to(existing, ca_cert):
                raise CertError(f"{paths.cert} exists but is not signed by {paths.ca}; "
                                "remove it to issue a new one")
            return Issued(paths.cert, paths.key, False, found.role, name, shown)
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if found.server:
            usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        now = _now()
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([
                       x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                       x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, found.role),
                       x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(ca_cert.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _publish_pair(paths.cert, cert, paths.key, key)
        return Issued(paths.cert, paths.key, True, found.role, name, shown)


def _checked_request(kind: str, name: str, ips: Sequence[str],
                     dns: Sequence[str]) -> tuple[Kind, str, list[x509.GeneralName]]:
    found = KINDS.get(kind)
    if found is None:
        raise CertError(f"unknown certificate role {kind!r}; roles are {', '.join(KINDS)}")
    if found.role == "admin":
        if name != ADMIN_NAME or ips or dns:
            raise CertError("an admin certificate is a client certificate named 'admin', "
                            "with no addresses or DNS names")
        return found, name, []
    if not _is_label(name):
        raise CertError(f"invalid {kind} name {name!r}: it must be {validate.HOST_NAME_RULE}")
    names = [name, *(["localhost"] if found.local else []), *dns]
    addresses = [*(["127.0.0.1"] if found.local else []), *ips]
    sans: list[x509.GeneralName] = []
    for host in dict.fromkeys(names):
        if not host or not all(_is_label(label) for label in host.split(".")):
            raise CertError(f"invalid DNS name {host!r} for the {kind} certificate")
        sans.append(x509.DNSName(host))
    for address in dict.fromkeys(addresses):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            raise CertError(f"invalid IP address {address!r} for the {kind} certificate") from None
    return found, name, sans


def _is_label(label: str) -> bool:
    try:
        validate.host_name(label)
    except InvalidArgument:
        return False
    return True


def _show(san: x509.GeneralName) -> str:
    return f"DNS:{san.value}" if isinstance(san, x509.DNSName) else f"IP:{san.value}"


# ---- reading and checking -----------------------------------------------------------

def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except OSError as exc:
        raise CertError(f"cannot read the certificate {path}: {exc.strerror}") from None
    except ValueError:
        raise CertError(f"{path} is not a PEM certificate") from None


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CertError(f"cannot read the private key {path}: {exc.strerror}") from None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # The key's content is never part of the message.
        raise CertError(f"{path} is not an unencrypted PEM private key") from None


def _load_ca(directory: Path, authority: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    where = ca_dir(directory, authority)
    cert_path, key_path = where / CA_FILE, where / CA_KEY_FILE
    if not cert_path.exists():
        raise CertError(f"no CA in {where}: run `vxmesh certs init --dir {directory}` first")
    cert, key = load_cert(cert_path), load_key(key_path)
    if not key_matches(cert, key):
        raise CertError(f"{key_path} is not the key of {cert_path}")
    return cert, key


# ---- files ---------------------------------------------------------------------------

def _existing_pair(cert_path: Path, key_path: Path, if_missing: bool) -> bool:
    """True if both files exist and may be kept; an error if they may not, or one is alone."""
    present = [p for p in (cert_path, key_path) if p.exists()]
    if not present:
        return False
    if len(present) == 1:
        raise CertError(f"{present[0]} exists without {({cert_path, key_path} - set(present)).pop()}: "
                        "remove it, or restore the other file")
    if not if_missing:
        raise CertError(f"{cert_path} already exists; refusing to overwrite it "
                        "(remove it first, or pass --if-missing to keep it)")
    return True


def _publish_pair(cert_path: Path, cert: x509.Certificate, key_path: Path, key) -> None:
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _publish(key_path, key_pem, FILE_MODE)
    try:
        _publish(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    except BaseException:
        key_path.unlink(missing_ok=True)  # no key without its certificate
        raise


def _publish(path: Path, data: bytes, mode: int) -> None:
    """Write `path` whole or not at all, with `mode` from the start, never replacing a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".certs-")  # created 0600
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # unlike rename, fails if the name is taken
        except FileExistsError:
            raise CertError(f"{path} already exists; refusing to overwrite it") from None
    finally:
        os.unlink(tmp)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
