"""Mutual TLS material for vxmesh's gRPC, and the identity a certificate carries.

Every process loads its CA, certificate and key once at start, checked
(signed by that CA, key matching, not expired, of the role and name the
process runs as), so a wrong file stops it with one line naming the file
instead of failing every handshake later. The identity of the other end of
a call is read from the certificate gRPC verified during the handshake:
the role from the subject's OU, the name from its CN (cli/pki.py issues
them so).

Private keys are held in memory only to hand them to gRPC; they are never
part of a message, a repr or a log line.
"""
from __future__ import annotations

import datetime
import functools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

import grpc

from transport.cert_subject import CN, OU, subject_of_pem

# cryptography is imported where it is used: it costs a user command that
# talks over the local unix socket ~70 ms of start-up for nothing.
if TYPE_CHECKING:
    from cryptography import x509

ROLES = ("agent", "controller", "etcd", "admin")
ORGANIZATION = "vxmesh"
CHECK_SECONDS = 60.0       # load_apart's child: an interpreter start and a few signature checks


class TlsError(Exception):
    """TLS files that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class Identity:
    role: str      # one of ROLES
    name: str      # the certificate's CN: a host name for agents

    def __str__(self) -> str:
        return f"{self.role} {self.name!r}"


@dataclass(frozen=True)
class Tls:
    """One process's checked TLS material."""
    files: TlsFiles
    identity: Identity
    ca: bytes
    cert: bytes
    key: bytes = field(repr=False)

    @classmethod
    def load(cls, files: TlsFiles, roles: tuple[str, ...], name: str | None = None) -> Tls:
        """Read and check `files` for a process running as one of `roles` (named `name`)."""
        ca_pem, cert_pem, key_pem = _read_files(files)
        return cls.checked(files, roles, name, ca_pem, cert_pem, key_pem)

    @classmethod
    def load_apart(cls, files: TlsFiles, roles: tuple[str, ...], name: str | None = None) -> Tls:
        """`load`, its checks run by a child process (transport/tls_check.py): the
        cryptography package they need then never maps its 8 MB library into a
        daemon that runs for months and needs none of it after. The child checks
        exactly the bytes read here, which are the ones kept."""
        ca_pem, cert_pem, key_pem = _read_files(files)
        request = {"files": [str(files.ca), str(files.cert), str(files.key)], "roles": list(roles), "name": name,
                   "pems": [pem.decode("latin-1") for pem in (ca_pem, cert_pem, key_pem)]}
        proc = subprocess.run([sys.executable, "-m", "transport.tls_check"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=CHECK_SECONDS)
        try:
            answer = json.loads(proc.stdout)
        except ValueError:
            raise TlsError(f"checking {files.cert} failed: {proc.stderr.strip()[-300:]}") from None
        if "error" in answer:
            raise TlsError(answer["error"])
        return cls(files, Identity(answer["role"], answer["name"]), ca_pem, cert_pem, key_pem)

    @classmethod
    def checked(cls, files: TlsFiles, roles: tuple[str, ...], name: str | None, ca_pem: bytes, cert_pem: bytes,
                key_pem: bytes) -> Tls:
        """The checks of `load` on material read from `files`."""
        cert = _checked_pems(files, ca_pem, cert_pem, key_pem)
        role, cn = role_and_name(cert)
        if role not in roles:
            raise TlsError(f"{files.cert} is {article(role) if role else 'not a vxmesh'} certificate; "
                           f"this needs {article(' or '.join(roles))} certificate (vxmesh certs issue)")
        if name is not None and cn != name:
            raise TlsError(f"{files.cert} is the certificate of {role} {cn!r}, but this {role} is named {name!r}")
        return cls(files, Identity(role, cn), ca_pem, cert_pem, key_pem)

    def server_credentials(self) -> grpc.ServerCredentials:
        # Clients must present a certificate signed by our CA: anything else
        # ends at the handshake, before any method runs.
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)


def check_etcd_client(files: TlsFiles, cluster_ca: Path) -> None:
    """A controller's files for etcd, checked at start like its own: readable,
    signed by the etcd CA, key matching, not expired. And that CA is not the
    cluster's: etcd admits every certificate its CA signed, to every key, so
    trusting the cluster CA would let any agent or admin certificate rewrite
    the cluster's state. The holder may be any certificate (an existing etcd
    cluster has its own), not necessarily one `vxmesh certs` made."""
    ca_pem = _checked_pair(files)[0]
    if _parse_cert(files.ca, ca_pem) == _parse_cert(cluster_ca, _read(cluster_ca, "CA certificate")):
        raise TlsError(f"etcd-ca {files.ca} is the cluster CA {cluster_ca}: etcd must trust a CA of its own, "
                       "which signs no agent's or admin's certificate (`vxmesh certs init` makes DIR/etcd/ca.pem)")


def _checked_pair(files: TlsFiles) -> tuple[bytes, bytes, bytes, x509.Certificate]:
    """(CA, certificate and key as read, the parsed certificate): the certificate
    signed by the CA, the key its own, not expired."""
    ca_pem, cert_pem, key_pem = _read_files(files)
    return ca_pem, cert_pem, key_pem, _checked_pems(files, ca_pem, cert_pem, key_pem)


def _read_files(files: TlsFiles) -> tuple[bytes, bytes, bytes]:
    return (_read(files.ca, "CA certificate"), _read(files.cert, "certificate"), _read(files.key, "private key"))


def _checked_pems(files: TlsFiles, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    ca, cert = _parse_cert(files.ca, ca_pem), _parse_cert(files.cert, cert_pem)
    try:
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TlsError(f"{files.key} is not an unencrypted PEM private key") from None
    if not chains_to(cert, ca):
        raise TlsError(f"{files.cert} is not signed by the CA {files.ca}")
    if not key_matches(cert, key):
        raise TlsError(f"{files.key} is not the private key of {files.cert}")
    if cert.not_valid_after_utc < datetime.datetime.now(datetime.timezone.utc):
        raise TlsError(f"{files.cert} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    return cert


def article(words: str) -> str:
    return f"{'an' if words[:1] in 'aeiou' else 'a'} {words}"


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the {what} {path}: {exc.strerror}") from None


def _parse_cert(path: Path, pem: bytes) -> x509.Certificate:
    from cryptography import x509
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise TlsError(f"{path} is not a PEM certificate") from None


def chains_to(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True if `ca` signed `cert`."""
    from cryptography.exceptions import InvalidSignature
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def key_matches(cert: x509.Certificate, key) -> bool:
    from cryptography.hazmat.primitives import serialization

    def der(public_key) -> bytes:
        return public_key.public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    return der(cert.public_key()) == der(key.public_key())


def role_and_name(cert: x509.Certificate) -> tuple[str, str]:
    """(role from the OU, name from the CN); ("", "") for a certificate that is not a vxmesh identity."""
    from cryptography.x509.oid import NameOID

    def first(oid) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""
    role = first(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return (role, first(NameOID.COMMON_NAME)) if role in ROLES else ("", "")


def peer_identity(context: grpc.aio.ServicerContext) -> Identity | None:
    """Who is calling: None on a plain-text connection, or a certificate that names no role."""
    pems = context.auth_context().get("x509_pem_cert")
    return _identity_of(pems[0]) if pems else None


@functools.lru_cache(maxsize=1024)
def _identity_of(pem: bytes) -> Identity | None:
    # Parsed once per certificate, not once per call: agents hold long streams
    # but the CLI opens a connection per command. The subject only, without the
    # cryptography package (transport/cert_subject.py says why): gRPC has
    # verified the certificate already.
    subject = subject_of_pem(pem)
    if subject is None:
        return None
    role = subject.get(OU, "")
    return Identity(role, subject.get(CN, "")) if role in ROLES else None
