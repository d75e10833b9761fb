"""The agent loads pyroute2 by the parts it uses: checked in fresh interpreters,
since a test process has usually loaded pyroute2 whole already."""
from __future__ import annotations

import subprocess
import sys

# A module of the package's whole load that no part the agent uses needs.
WHOLE_ONLY = "pyroute2.ndb.main"


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_agents_imports_load_only_the_parts_they_use():
    out = _run(
        "import sys, agent.main\n"
        "from pyroute2 import AsyncIPRoute, IPRoute, netns\n"
        "from pyroute2.netlink.exceptions import NetlinkError\n"
        f"print(AsyncIPRoute.__module__, netns.__name__, {WHOLE_ONLY!r} in sys.modules)")
    assert out == "pyroute2.iproute.linux pyroute2.netns False"


def test_any_other_name_loads_the_package_whole():
    out = _run(
        "import sys, agent.kernel\n"
        "from pyroute2 import NDB, AsyncIPRoute\n"
        "import pyroute2\n"
        f"print(NDB.__module__, {WHOLE_ONLY!r} in sys.modules, pyroute2.IPDB.__name__)")
    assert out == "pyroute2.ndb.main True IPDB"


def test_without_it_importing_pyroute2_loads_the_whole_package():
    """Control: what the parts spare."""
    out = _run(f"import sys\nfrom pyroute2 import AsyncIPRoute\nprint({WHOLE_ONLY!r} in sys.modules)")
    assert out == "True"
