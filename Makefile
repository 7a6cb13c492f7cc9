# Two commands matter to a newcomer: `make demo` and `make test`. Everything else is a part.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STAGE := $(ROOT)/build/collections
export ANSIBLE_COLLECTIONS_PATH := $(STAGE)
export PYTHONPATH := $(STAGE)
export ANSIBLE_CONFIG := $(ROOT)/tests/ansible.cfg

.PHONY: help bootstrap stage demo test sanity galaxy-importer units units-compat pytest pester functional lint lab lab-serve benchmark changelog build clean

help:
	@echo "make demo   - offline triage of examples/evidence (no Windows needed)"
	@echo "make test   - sanity (tarball), galaxy-importer, units (2.21 and 2.16), pytest, Pester, functional, ansible-lint"

$(VENV)/.requirements-installed: requirements-dev.txt scripts/bootstrap.sh
	bash scripts/bootstrap.sh core

# Everything: core plus the ansible-core 2.16 and galaxy-importer venvs.
bootstrap: $(VENV)/.requirements-installed
	@bash scripts/bootstrap.sh compat importer
	@bash scripts/stage.sh

stage: bootstrap

demo: bootstrap
	$(VENV)/bin/ansible-playbook playbooks/triage.yml

# Core only: the parts that need the 2.16 or the galaxy-importer venv build it on first use,
# in the lane that runs them, so the pytest lane starts without waiting for either.
test: $(VENV)/.requirements-installed
	@bash scripts/stage.sh
	bash scripts/test.sh

sanity: bootstrap
	bash scripts/ansible-test.sh sanity-tarball
	bash scripts/ansible-test.sh sanity-workshop

galaxy-importer: bootstrap
	bash scripts/galaxy-importer.sh

units: bootstrap
	bash scripts/ansible-test.sh units

units-compat: bootstrap
	bash scripts/ansible-test.sh units-compat

pytest: bootstrap
	$(PY) -m pytest -q tests/unit

pester: bootstrap
	bash scripts/pester.sh

functional: bootstrap
	$(PY) -m pytest -q tests/functional

lint: bootstrap
	$(VENV)/bin/ansible-lint

# The loopback Windows lab (docs/lab.md): its tests, or a lab left serving for manual runs.
lab: bootstrap
	$(PY) -m pytest -q -n 3 --dist loadfile tests/lab

# One host per example device of examples/evidence, seeded from its scenario (tests/lab/scenarios).
LAB_EXAMPLES := $(sort $(notdir $(wildcard examples/evidence/*)))
lab-serve: bootstrap
	$(PY) -m tests.lab serve --hosts $(words $(LAB_EXAMPLES)) --state build/lab $(foreach s,$(LAB_EXAMPLES),--scenario $(s))

benchmark: bootstrap
	$(PY) benchmarks/dsreg_parse.py
	$(PY) benchmarks/ps_payload.py --breakdown
	$(PY) benchmarks/lab_measure.py --hosts 2 -- -m ansible.windows.win_ping

changelog: bootstrap
	bash scripts/changelog.sh

build: bootstrap
	$(VENV)/bin/ansible-galaxy collection build --force --output-path build/dist .

clean:
	rm -rf build tests/output reports
