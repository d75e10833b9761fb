"""What `vxmesh` answers before importing anything else: `--version`, and which first words are the daemons.

cli/main.py imports only this module (and the standard library) before it
knows the command, so `vxmesh --version` costs the interpreter's start-up
and `vxmesh controller` execs its daemon without loading the CLI.

The version is a constant rather than importlib.metadata's answer: reading the installed
metadata costs about 0.1 s of imports, as long as the whole command should
take. tests/unit/test_cli_startup.py checks it against the installed
package's version (pyproject.toml), so the two cannot drift apart.
"""
VERSION = "0.1.0"
# As Docker's: print the version and exit.
VERSION_FLAGS = ("-v", "--version")
# The daemons `vxmesh NAME ...` runs, each as `python -m NAME ...` (cli/main.py).
DAEMONS = {"controller": "run a controller (options: vxmesh controller --help)",
           "agent": "run a host agent (options: vxmesh agent --help)"}


def version_line() -> str:
    """As Docker prints it: `vxmesh version 0.1.0`."""
    return f"vxmesh version {VERSION}"
