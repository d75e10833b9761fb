"""The fixtures every test module may ask for by name (defined in tests/helpers/)."""
from tests.helpers.etcd import etcd, etcd_server, prefix, store, work_dir  # noqa: F401
from tests.helpers.kernel_lab import lab  # noqa: F401
from tests.helpers.lab import make_lab  # noqa: F401
from tests.helpers.images import busybox_archive, busybox_layout, checked_archive  # noqa: F401
from tests.helpers.oci import busybox_images, oci_host  # noqa: F401
from tests.helpers.registry import registry, tls_registry  # noqa: F401
