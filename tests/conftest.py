"""The fixtures every test module may ask for by name (defined in tests/helpers/)."""
import pytest

from tests.helpers.etcd import etcd, etcd_server, prefix, store, work_dir  # noqa: F401
from tests.helpers.kernel_lab import lab  # noqa: F401
from tests.helpers.lab import make_lab  # noqa: F401
from tests.helpers.images import busybox_archive, busybox_layout, checked_archive  # noqa: F401
from tests.helpers.oci import busybox_images, oci_host  # noqa: F401
from tests.helpers.registry import registry, tls_registry  # noqa: F401


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist
# loadgroup`): most integration tests wait on daemons and timers, so two at a
# time take about the wall time of one. A module's tests stay together on one
# worker, so a module's shared lab is built once; the benchmark smokes share
# one group, because each checks that no `vxbench` namespace was left behind
# and would see another's lab. Labs never collide otherwise: each has its own
# random prefix (tests/helpers/lab.py).
BENCHMARK_SMOKES = {"test_bench_smoke_lab", "test_bench_smoke_control", "test_benchmarks_smoke"}


# First: xdist's worker reads the groups in its own hook of the same name,
# which would otherwise run before this one and find none.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        group = "benchmark-smokes" if module in BENCHMARK_SMOKES else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))
