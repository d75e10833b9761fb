"""Can this kernel do IPsec ESP, which encrypted overlays need?

Asked of the kernel itself rather than guessed from module lists (ESP may
be built in, loadable on demand, or absent, and /sys/module shows none of
that reliably): an ESP transport-mode security association between two
documentation addresses is created in a scratch network namespace that
dies with the `ip` process, so nothing is left behind and the host's own
xfrm state is never touched. `unshare --net` needs CAP_SYS_ADMIN; a
controller running without it tries a user namespace instead.
"""
from __future__ import annotations

import asyncio
import os
import platform
import secrets

XFRM_STAT = "/proc/net/xfrm_stat"
PROBE_TIMEOUT = 10.0


async def esp_missing() -> str | None:
    """Why this kernel cannot do ESP, in one sentence; None when it can."""
    kernel = f"kernel {platform.release()}"
    if not os.path.exists(XFRM_STAT):
        return f"{kernel} has no xfrm (IPsec) framework ({XFRM_STAT} is missing)"
    key, auth = secrets.token_hex(16), secrets.token_hex(32)
    add_state = ["ip", "xfrm", "state", "add", "src", "192.0.2.1", "dst", "192.0.2.2",
                 "proto", "esp", "spi", "0x100", "mode", "transport",
                 "enc", "cbc(aes)", f"0x{key}", "auth-trunc", "hmac(sha256)", f"0x{auth}", "128"]
    failure = ""
    for unshare in (["unshare", "--net"], ["unshare", "--user", "--map-root-user", "--net"]):
        code, err = await _run([*unshare, "--", *add_state])
        if code == 0:
            return None
        failure = err
        if "unshare failed" not in err:
            break  # the namespace was made: the kernel's answer is in `err`
    if "type not found" in failure.lower():
        return (f"{kernel} has no ESP support (xfrm refused an ESP state: {failure}); "
                "the esp4 module is neither built in nor loadable")
    if "algorithm not found" in failure.lower():
        return f"{kernel} lacks the ciphers ESP needs (cbc(aes), hmac(sha256)): {failure}"
    return f"could not verify ESP support of {kernel}: creating an ESP xfrm state failed: {failure}"


async def _run(argv: list[str]) -> tuple[int, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError as err:
        return 127, f"{err.filename} is not installed"
    try:
        _, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{argv[0]} did not finish within {PROBE_TIMEOUT:.0f}s"
    return proc.returncode, " ".join(err.decode(errors="replace").split())
