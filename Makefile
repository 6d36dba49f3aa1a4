# Kurzgefasst: German news in, English translation and summary out.
# `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# A PYTHON given on the command line gets a stamp of its own, so that `PYTHON=python3.12 make run`
# runs the install script, which rebuilds a .venv made by another Python version.
STAMP := $(VENV)/.installed$(if $(PYTHON),-$(notdir $(PYTHON)))
PYTEST_ARGS ?=
# The image `make image` builds, and what it bakes in (1: the default models, 0: none, tiny).
IMAGE ?= kurzgefasst:local
BAKE_MODELS ?= 1
TEST_IMAGE ?= kurzgefasst:test

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml scripts/install.sh
	scripts/install.sh $(VENV) dev
	@touch $(STAMP)

install: $(STAMP) ## make .venv (Python 3.11-3.13; PYTHON=...) with the dev extras (CPU torch)

test: $(STAMP) ## run the whole test suite (installs first if needed)
	$(PY) -m pytest $(PYTEST_ARGS)

test-reliability: $(STAMP) ## the fault, overload and hostile-input suite (CI sizes)
	$(PY) -m pytest tests/reliability $(PYTEST_ARGS)

soak: $(STAMP) ## the reliability suite at full size (200 jobs, 20 kills, 1,000 cases ...)
	KURZ_SOAK=1 $(PY) -m pytest tests/reliability --timeout=0 $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, mypy, the import contracts, hadolint and the Kubernetes manifests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	@if [ -f Dockerfile ]; then $(VENV)/bin/hadolint Dockerfile deploy/redis/Dockerfile; fi
	$(PY) -m service.dev.manifests

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

tiny-models: $(STAMP) ## build the tiny offline models into var/tiny-models
	$(PY) -m service make-tiny-models var/tiny-models

run: $(STAMP) ## start Redis, the API and one worker here (KURZ_MODELS=tiny: offline models)
	$(PY) -m service.dev.devstack

bench: $(STAMP) ## run the benchmarks; figures go to benchmarks/last-run.json
	$(PY) -m benchmarks

image: ## build the image with Docker, or Podman where no Docker engine answers (IMAGE, BAKE_MODELS)
	IMAGE=$(IMAGE) BAKE_MODELS=$(BAKE_MODELS) scripts/image.sh build

test-image: $(STAMP) ## build the images (tiny models) and check the compose stack as a user would
	IMAGE=$(TEST_IMAGE) BAKE_MODELS=tiny scripts/image.sh build
	scripts/image.sh redis
	IMAGE=$(TEST_IMAGE) $(PY) -m pytest tests/image/check_stack.py -x $(PYTEST_ARGS)

clean: ## remove the virtual environment and local state
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install test test-reliability soak lint format tiny-models run bench image test-image \
	clean
