# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := tests/compat/node_modules/.installed-stamp
PARSE_STAMP := bench/parse/node_modules/.installed-stamp
WEB_STAMP := web/node_modules/.installed-stamp
VENDOR := src/mindharbor/web/static/views/vendor
DASHBOARD_STAMP := tests/dashboard/node_modules/.installed-stamp

.PHONY: run test test-soak lint format bench bench-compare docs install node-deps clean web-vendor screenshots

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

# Parse Server 9 for the import test (tests/interop) and bench-compare, from its pinned lock.
$(PARSE_STAMP): bench/parse/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix bench/parse --no-audit --no-fund --loglevel=error && touch $(PARSE_STAMP); \
	else echo "npm not found: the Parse Server import test will be skipped"; fi

# The web views' pinned browser libraries (Parse JS SDK, Preact+htm, a QR encoder) and axe-core
# for the accessibility checks. The views need no build: `make web-vendor` copies the libraries'
# published browser files into the package, and a test checks the copies match the lock.
$(WEB_STAMP): web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix web --no-audit --no-fund --loglevel=error && touch $(WEB_STAMP); \
	else echo "npm not found: the web views' vendored-library check and axe-core will be skipped"; fi

web-vendor: $(WEB_STAMP)
	mkdir -p $(VENDOR)
	cp web/node_modules/parse/dist/parse.min.js $(VENDOR)/parse.min.js
	cp web/node_modules/htm/preact/standalone.module.js $(VENDOR)/preact-htm.module.js
	cp web/node_modules/qrcode-generator/qrcode.js $(VENDOR)/qrcode.js
	cp web/node_modules/parse/LICENSE $(VENDOR)/LICENSE.parse
	cp web/node_modules/htm/LICENSE $(VENDOR)/LICENSE.htm

# Screenshots of each main page at desktop and phone width, for the README (docs/screenshots).
screenshots: $(STAMP) $(WEB_STAMP)
	MINDHARBOR_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/web -k "sqlite"

# Parse Dashboard for the browser test (tests/dashboard), from its pinned lock.
$(DASHBOARD_STAMP): tests/dashboard/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/dashboard --no-audit --no-fund --loglevel=error && touch $(DASHBOARD_STAMP); \
	else echo "npm not found: the Parse Dashboard browser test will be skipped"; fi

node-deps: $(NODE_STAMP) $(PARSE_STAMP) $(WEB_STAMP) $(DASHBOARD_STAMP)

run: $(STAMP)
	$(BIN)/mindharbor seed-demo
	$(BIN)/mindharbor serve

test: $(STAMP) node-deps
	$(BIN)/pytest

# Minutes of mixed load on 2 workers (PostgreSQL): RSS per worker every 1,000 requests, fails
# if a worker keeps growing after the warm-up. SOAK_SECONDS=600 make test-soak for longer.
test-soak: $(STAMP)
	MINDHARBOR_SOAK_SECONDS=$${SOAK_SECONDS:-180} $(BIN)/pytest -m soak -s -p no:cacheprovider tests/soak

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
	rm -rf $(VENV) tests/compat/node_modules bench/parse/node_modules web/node_modules tests/dashboard/node_modules
