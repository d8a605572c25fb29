# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := tests/compat/node_modules/.installed-stamp

.PHONY: run test lint format bench bench-compare docs install node-deps clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The Parse JS SDK for the compatibility suite; without npm the suite says it was skipped.
$(NODE_STAMP): tests/compat/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/compat --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); \
	else echo "npm not found: the Parse JS SDK compatibility suite will be skipped"; fi

node-deps: $(NODE_STAMP)

run: $(STAMP)
	$(BIN)/mindharbor seed-demo
	$(BIN)/mindharbor serve

test: $(STAMP) node-deps
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

docs: $(STAMP)
	$(BIN)/mindharbor docs

bench: $(STAMP)
	$(BIN)/python -m bench.find_messages

# MindHarbor against Parse Server 9 on one scratch PostgreSQL cluster; writes bench/RESULTS.md.
# Needs PostgreSQL's server binaries, Node/npm, Redis for S6, and wrk (installed here if missing).
# Extra options: make bench-compare BENCH_ARGS="--scale 1 --duration 5"
bench-compare: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y --no-install-recommends wrk
	$(BIN)/python -m bench.compare $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tests/compat/node_modules
