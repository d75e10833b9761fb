"""`Tls.load`'s checks for a parent that keeps the cryptography package out of
its own memory (`Tls.load_apart`): the request on standard input (the files'
names, for the messages, and their bytes as the parent read them), the
identity or the refusal as JSON on standard output."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from transport.tls import Tls, TlsError, TlsFiles


def main() -> int:
    request = json.load(sys.stdin)
    files = TlsFiles(*(Path(name) for name in request["files"]))
    ca_pem, cert_pem, key_pem = (pem.encode("latin-1") for pem in request["pems"])
    try:
        tls = Tls.checked(files, tuple(request["roles"]), request["name"], ca_pem, cert_pem, key_pem)
    except TlsError as err:
        print(json.dumps({"error": str(err)}))
    else:
        print(json.dumps({"role": tls.identity.role, "name": tls.identity.name}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
