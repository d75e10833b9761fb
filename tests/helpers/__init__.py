"""What tests share: lab builders, fixtures and checks.

    lab.py             namespace labs of the whole system (deploy/lab.py), `make_lab`, waits
    kernel_lab.py      bare "machines" for tests of agent/kernel, the `lab` fixture
    etcd.py            a private etcd and a Store on it, per test module
    runtime.py         a network namespace, state root and cgroup parent for runtime tests
    kernel_tables.py   what a lab host's kernel holds vs. what it should hold
    controller_ready.py  waiting for a controller a test started

tests/conftest.py makes the fixtures visible to every test module; test
modules import the plain helpers from here, never from each other.
"""
