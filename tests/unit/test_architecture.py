"""The import rules of the architecture (pyproject.toml [tool.importlinter]) hold, and catch a breach.

The check runs import-linter on a copy of the packages: as they are (every
contract kept), and with one forbidden import added in each direction the
layers forbid (controller -> agent, agent -> controller, proto -> a daemon,
a stdlib-only rule module -> grpc, the agent's kernel code -> the rest of
the agent, a converger -> the link to the controller, and inside the
controller: the store -> the API, a driver -> the store, the etcd client ->
another controller module), each of which must break a contract.
"""
from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("proto", "transport", "cli", "controller", "agent")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# import-linter, run on the copy only: `-S` keeps out the editable install of
# this checkout (a .pth hook), which would otherwise shadow the copy's packages.
RUN_LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint(tree: Path) -> subprocess.CompletedProcess:
    path = ":".join([str(tree), *site.getsitepackages()])
    return subprocess.run([sys.executable, "-S", "-c", RUN_LINT, "--no-cache", "--config",
                           str(tree / "pyproject.toml")],
                          cwd=tree, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (`make setup` installs it)")
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_packages_keep_every_contract(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


@pytest.mark.parametrize("module, forbidden", [
    ("controller/api.py", "import agent.names"),
    ("agent/reconcile.py", "import controller.store"),
    ("agent/kernel/table.py", "import agent.view"),
    ("agent/convergers/containers.py", "import agent.link"),
    ("cli/main.py", "import controller.server"),
    ("proto/records.py", "import controller.keys"),
    ("proto/validate.py", "import grpc"),
    ("controller/store/networks.py", "import controller.api"),
    ("controller/drivers/overlay.py", "import controller.store.records"),
    ("controller/etcd.py", "import controller.keys"),
])
def test_a_forbidden_import_breaks_a_contract(tree, module, forbidden):
    path = tree / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n{forbidden}  # added by the test\n")
        result = lint(tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert importer in result.stdout
