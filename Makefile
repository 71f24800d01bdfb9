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

.PHONY: demo test env docker images test-services sanity lint units integration molecule build-install docs-check compat clean

demo: env images
	$(BIN)/ansible-playbook deploy.yml -i inventories/local

test: env images test-services
	scripts/run-tests

env:
	scripts/bootstrap-venv $(VENV) requirements-dev.txt

docker:
	scripts/ensure-docker

images: docker
	scripts/build-base-image

# PostgreSQL on loopback and headless Chromium for the ledger's tests (both idempotent).
test-services:
	scripts/ensure-postgres
	scripts/ensure-chromium

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

clean:
	rm -rf $(VENV) .venv-* tests/output build .ansible
