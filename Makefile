# The two commands of the README: `make lab` and `make test`. Both set up
# what they need first (Debian packages, then Python packages in .venv).

PYTHON    ?= python3
VENV      := .venv
PY        := $(VENV)/bin/python
# crun and conmon run containers, skopeo and umoci move and unpack images, docker-registry is the
# registry of the lab and the tests (docs/containers.md).
# vagrant (with Debian's libvirt provider, which `vagrant validate` needs), systemd, openssl and
# shellcheck check the deployment files (tests/unit/test_deploy.py); recommends are skipped so vagrant
# does not pull in a hypervisor.
APT_PKGS  := etcd-server etcd-client iproute2 nftables iputils-ping iperf3 tshark tcpdump \
             busybox-static util-linux procps python3-venv \
             crun conmon skopeo umoci docker-registry docker.io podman containernetworking-plugins \
             vagrant vagrant-libvirt systemd openssl shellcheck
APT_STAMP := $(VENV)/.apt-installed
PIP_STAMP := $(VENV)/.pip-installed
PROTO_OUT := proto/vxmesh_pb2.py proto/vxmesh_pb2_grpc.py proto/vxmesh_pb2.pyi

.PHONY: setup lab lab-down lab-status test unit soak bench proto proto-check imports deploy-config clean

setup: $(APT_STAMP) $(PIP_STAMP)

# Depends on this file so a package added to APT_PKGS gets installed.
$(APT_STAMP): Makefile
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@touch $@

$(PIP_STAMP): pyproject.toml $(APT_STAMP)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# Regenerate the gRPC/protobuf Python from proto/vxmesh.proto.
proto: $(PIP_STAMP)
	$(PY) -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. proto/vxmesh.proto

# Fail when the checked-in generated code differs from what `make proto` makes.
proto-check: $(PIP_STAMP)
	@tmp=$$(mktemp -d) && mkdir -p $$tmp/proto && cp proto/vxmesh.proto $$tmp/proto/ && \
	$(PY) -m grpc_tools.protoc -I$$tmp --python_out=$$tmp --grpc_python_out=$$tmp --pyi_out=$$tmp $$tmp/proto/vxmesh.proto && \
	for f in $(PROTO_OUT); do \
	  cmp -s $$tmp/$$f $$f || { echo "$$f is out of date: run 'make proto'"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "generated protobuf code is up to date"

# The architecture's import rules (pyproject.toml [tool.importlinter]): the CLI
# and the two daemons never import each other, proto/ imports none of them.
imports: $(PIP_STAMP)
	$(VENV)/bin/lint-imports --no-cache

# Rewrite the documented example configs in deploy/config/ from the renderers
# (tests/unit/test_deploy.py fails while they differ).
deploy-config: $(PIP_STAMP)
	$(PY) -m deploy.config_files examples --write

lab: setup
	$(PY) -m deploy.demo

lab-down: $(PIP_STAMP)
	$(PY) -m deploy.lab down

lab-status: $(PIP_STAMP)
	$(PY) -m deploy.lab status

unit: setup
	$(PY) -m pytest -q -m "not integration"

test: setup proto-check imports
	$(PY) -m pytest -q -n 2 --dist loadgroup

# Off by default: churn containers while agents and controllers restart, then
# audit every host's tables and look for leaks (tests/soak.py). `make test`
# runs a short smoke of it (tests/integration/test_soak_smoke.py).
SOAK_SECONDS ?= 180
soak: setup
	$(PY) -m tests.soak --seconds $(SOAK_SECONDS)

# Every benchmark in sequence, then a summary: figure, target, baseline from
# the same run, met or not (tests/benchmarks/run_all.py; BENCHMARKS.md has a run).
bench: setup
	$(PY) -m tests.benchmarks.run_all

clean: lab-down
	rm -rf $(VENV) *.egg-info
