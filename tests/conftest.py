from tests.lab_fixture import make_lab  # noqa: F401  (pytest finds fixtures by name)
