# Every target installs what it needs first: a fresh clone needs only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install browser bench up demo test lint format protos clean

# Python packages into .venv; anvil (the local EVM node) and buf (the proto linter) from npm
# into node_modules.
$(INSTALLED): pyproject.toml package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund --ignore-scripts
	touch $(INSTALLED)

install: $(INSTALLED)

## Runs the platform: private PostgreSQL, anvil with MockUSDC, migrations, services, gateway.
up: install
	$(PY) -m devstack up

## Retempo's seed 000 story through the REST API of a running `make up`, request by request.
demo: install
	$(PY) -m devstack.demo

## Measures every figure next to its baseline on its own stack (writes bench/results/latest.json).
bench: install
	command -v h2load >/dev/null && command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client wrk)
	$(PY) -m bench

## Debian chromium for the checkout-page tests (driven by Playwright; no browser download).
browser:
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

## Lint, type-check, then the whole test suite against a real PostgreSQL.
test: lint browser
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	node_modules/.bin/buf lint

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Regenerates the committed stubs in billing/ from protos/.
protos: install
	$(PY) -m devstack.protogen

clean:
	rm -rf $(VENV) node_modules .devstack .pytest_cache .mypy_cache .ruff_cache
