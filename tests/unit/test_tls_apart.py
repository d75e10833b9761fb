"""A daemon's TLS identity without the cryptography package in its memory: the
subject read from DER (transport/cert_subject.py) against cryptography's own
reading, and `Tls.load_apart` against `Tls.load`, on certificates `vxmesh certs`
issues."""
from __future__ import annotations

import subprocess
import sys

import pytest

from cli import pki
from transport import tls
from transport.cert_subject import CN, OU, subject_of_der, subject_of_pem
from transport.tls import Identity, Tls, TlsError


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    pki.init(directory)
    pki.issue(directory, "agent", "h1")
    pki.issue(directory, "controller", "ctl-1")
    return directory


def test_the_subject_read_from_der_is_the_one_cryptography_reads(certs):
    from cryptography import x509
    for kind, name in (("agent", "h1"), ("controller", "ctl-1"), ("admin", pki.ADMIN_NAME)):
        if kind == "admin":
            pki.issue(certs, "admin")
        pem = pki.files(certs, kind, name).cert.read_bytes()
        subject = subject_of_pem(pem)
        assert (subject[OU], subject[CN]) == tls.role_and_name(x509.load_pem_x509_certificate(pem))
        tls._identity_of.cache_clear()
        assert tls._identity_of(pem) == Identity(kind, name)


def test_anything_but_a_certificate_has_no_subject(certs):
    pem = pki.files(certs, "agent", "h1").cert.read_bytes()
    import ssl
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    assert subject_of_pem(b"not a certificate") is None
    assert subject_of_der(der[:40]) is None                  # truncated
    assert subject_of_der(b"\x31" + der[1:]) is None          # not a SEQUENCE
    assert tls._identity_of(pki.files(certs, "agent", "h1").key.read_bytes()) is None


def test_load_apart_checks_as_load_does_and_keeps_cryptography_out(certs):
    files = pki.files(certs, "agent", "h1")
    assert Tls.load_apart(files, ("agent",), "h1") == Tls.load(files, ("agent",), "h1")
    with pytest.raises(TlsError) as err:
        Tls.load_apart(files, ("agent",), "h2")
    assert "is the certificate of agent 'h1', but this agent is named 'h2'" in str(err.value)
    with pytest.raises(TlsError, match="is not the private key of"):
        Tls.load_apart(pki.files(certs, "agent", "h1").__class__(files.ca, files.cert,
                                                                  pki.files(certs, "controller", "ctl-1").key),
                       ("agent",), "h1")
    out = subprocess.run([sys.executable, "-c", f"""
import sys
from pathlib import Path
from transport.tls import Tls, TlsFiles
Tls.load_apart(TlsFiles(Path({str(files.ca)!r}), Path({str(files.cert)!r}), Path({str(files.key)!r})), ("agent",), "h1")
print("cryptography" in sys.modules)
"""], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
