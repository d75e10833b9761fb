"""The attributes of a certificate's subject, read from its DER bytes alone.

For the identity of the other end of a call (transport/tls.py): gRPC has
verified the certificate during the handshake, so only its subject is read
here, not trusted on its own. A long-running daemon answers calls all its
life; reading a subject through the cryptography package maps its Rust
library (8 MB of every agent's memory) for these few fields. The walk
follows X.509's structure (RFC 5280, 4.1): Certificate -> tbsCertificate ->
[version], serialNumber, signature, issuer, validity, subject; anything
that does not parse so is refused (None), never guessed at.
"""
from __future__ import annotations

import ssl

_SEQUENCE, _SET, _OID, _CONTEXT_0 = 0x30, 0x31, 0x06, 0xA0
_STRINGS = {0x0C, 0x13, 0x14, 0x16, 0x1E}   # UTF8, Printable, Teletex, IA5, BMP
OU = "2.5.4.11"
CN = "2.5.4.3"


class _Malformed(ValueError):
    pass


def subject_of_pem(pem: bytes) -> dict[str, str] | None:
    """OID (dotted) -> value of the first attribute of each type in the subject of
    the first certificate of `pem`; None if it is not a certificate."""
    try:
        text = pem.decode("ascii")
        end = text.index(ssl.PEM_FOOTER) + len(ssl.PEM_FOOTER)
        return subject_of_der(ssl.PEM_cert_to_DER_cert(text[:end]))
    except (ValueError, UnicodeDecodeError):
        return None


def subject_of_der(der: bytes) -> dict[str, str] | None:
    try:
        tag, cert, _ = _element(der, 0)
        _expect(tag, _SEQUENCE)
        tag, tbs, _ = _element(cert, 0)
        _expect(tag, _SEQUENCE)
        offset = 0
        tag, _, after = _element(tbs, offset)
        if tag == _CONTEXT_0:          # version, present from v2 on
            offset = after
        for _field in ("serialNumber", "signature", "issuer", "validity"):
            _, _, offset = _element(tbs, offset)
        tag, subject, _ = _element(tbs, offset)
        _expect(tag, _SEQUENCE)
        return _attributes(subject)
    except _Malformed:
        return None


def _attributes(name: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    offset = 0
    while offset < len(name):
        tag, rdn, offset = _element(name, offset)
        _expect(tag, _SET)
        inner = 0
        while inner < len(rdn):
            tag, pair, inner = _element(rdn, inner)
            _expect(tag, _SEQUENCE)
            tag, oid, rest = _element(pair, 0)
            _expect(tag, _OID)
            tag, value, _ = _element(pair, rest)
            if tag not in _STRINGS:
                raise _Malformed("subject value of an unknown string type")
            found.setdefault(_oid_text(oid), _string(tag, value))
    return found


def _element(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, contents, offset after) of the DER element at `offset`."""
    if offset + 2 > len(data):
        raise _Malformed("truncated")
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise _Malformed("bad length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise _Malformed("truncated")
    return tag, data[start:end], end


def _expect(tag: int, wanted: int) -> None:
    if tag != wanted:
        raise _Malformed(f"tag {tag:#x} where {wanted:#x} belongs")


def _oid_text(raw: bytes) -> str:
    if not raw:
        raise _Malformed("empty OID")
    parts = [min(raw[0] // 40, 2)]
    parts.append(raw[0] - 40 * parts[0])
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def _string(tag: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-16-be") if tag == 0x1E else raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("undecodable subject value") from None
