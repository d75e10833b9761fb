"""What tests share: lab builders, fixtures, waits and readers of what tools say.

    lab.py             namespace labs of the whole system (deploy/lab.py): `make_lab`,
                       `running_lab`, `lab_with_blue`, test prefixes vxt<hex>
    lab_cli.py         what tests ask a lab's `vxmesh` CLI, read from its JSON (inspect,
                       network, containers, run, pings, hosts_up)
    kernel_lab.py      bare "machines" (deploy/topology.py nodes, vxk<hex>) for tests of
                       agent/kernel, the agent code in a setns worker; the `lab` fixture
    kernel_tables.py   what a lab host's kernel holds for an overlay vs. what it should hold
    runtime.py         a network namespace, state root and cgroup parent for runtime tests
    etcd.py            a private etcd and a Store on it, per test module
    controller_ready.py  waiting for a controller a test started to be healthy
    polling.py         wait_for / wait_until: poll a condition, fail naming it
    tool_text.py       the few tools with text output only (ping, ss), parsed once each
    file_modes.py      which files and directories break the 0600/0700 rule for secrets

tests/conftest.py makes the fixtures visible to every test module; test
modules import the plain helpers from here, never from each other.
"""
