# The README's two commands: `make demo` and `make test`. Both install what they need first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The browser side (static/embed): npm ci from the committed lock, then esbuild builds the embed
# runtime and GraphiQL into dist/ (not committed) and host.js/host.d.ts from host.ts (committed).
EMBED := static/embed
EMBED_DEPS := $(EMBED)/node_modules/.package-lock.json
EMBED_BUILD := $(EMBED)/dist/manifest.json

.PHONY: install demo serve test fuzz lint schema services chromium bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(EMBED_DEPS): $(EMBED)/package.json $(EMBED)/package-lock.json
	cd $(EMBED) && npm ci --no-audit --no-fund

$(EMBED_BUILD): $(EMBED_DEPS) $(EMBED)/build.mjs $(EMBED)/host.ts $(wildcard $(EMBED)/src/* $(EMBED)/src/*/* $(EMBED)/graphiql/*)
	cd $(EMBED) && npm run --silent build

install: $(STAMP) $(EMBED_BUILD)

## make demo: set up on a fresh machine, seed the demo org, serve on the embedded defaults
demo: install
	$(BIN)/emban demo
	$(BIN)/emban serve

serve: install
	$(BIN)/emban serve

## make test: install, start PostgreSQL/Redis if needed, lint, type-check, run every test
test: install services chromium lint
	$(BIN)/pytest

## make fuzz: the isolation fuzz at full size (10,000 random requests; `make test` runs 400)
fuzz: install services
	EMBAN_FUZZ_REQUESTS=$${EMBAN_FUZZ_REQUESTS:-10000} $(BIN)/pytest tests/e2e/test_isolation_fuzz.py -q -s

services:
	bash scripts/ensure-services.sh

chromium:
	bash scripts/ensure-chromium.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict emban
	cd $(EMBED) && npm run --silent typecheck

## make schema: write schema/ (SDL, OpenAPI) and regenerate the runtime's GraphQL types from it
schema: install
	$(BIN)/emban schema
	cd $(EMBED) && npm run --silent codegen

## make bench: ingest and query figures next to the raw engine (not pass/fail)
bench: install chromium
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.query
	$(BIN)/python -m bench.live
	$(BIN)/python -m bench.embed_render
	$(BIN)/python -m bench.gil_switch
	$(BIN)/python -m bench.isolation --runs 3
	$(BIN)/python -m bench.alerts
	$(BIN)/python -m bench.metrics

clean:
	rm -rf $(VENV) .emban .mypy_cache .ruff_cache .pytest_cache $(EMBED)/node_modules $(EMBED)/dist
