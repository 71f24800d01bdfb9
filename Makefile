# The two commands of README.md: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export LC_ALL := C.UTF-8
export LANG := C.UTF-8
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONDONTWRITEBYTECODE := 1

VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: demo test env docker images tools test-services sanity lint units integration molecule build-install docs-check compat compat-compose clean

demo: env images
	$(BIN)/ansible-playbook deploy.yml -i inventories/demo

test: env images test-services
	scripts/run-tests

env:
	scripts/bootstrap-venv $(VENV) requirements-dev.txt

docker:
	scripts/ensure-docker

images: docker
	scripts/build-base-image

# The command-line tools the tests call (shellcheck, node/npm, cron, logrotate, sshd, iproute2...),
# PostgreSQL on loopback and headless Chromium for the ledger's tests (all idempotent, quiet when present).
test-services: tools
	scripts/ensure-postgres
	scripts/ensure-chromium

tools:
	scripts/ensure-tools

sanity: env
	scripts/run-tests sanity

lint: env
	scripts/run-tests lint

units: env test-services
	scripts/run-tests units

integration: env images test-services
	scripts/run-tests integration

molecule: env images
	scripts/run-tests molecule

build-install: env
	scripts/run-tests build-install

docs-check: env
	scripts/run-tests docs

compat: env
	scripts/run-tests compat

# The Compose lane (not part of `make test`): the Compose, pipeline and preflight integration cases
# with Compose 2.40.3 from Debian sid (scripts/ensure-compose-lane), selected by DOCKER_CONFIG.
compat-compose: env images
	scripts/run-tests compat-compose

clean:
	rm -rf $(VENV) .venv-* tests/output build .ansible
