# The README's two commands: `make demo` and `make test`. Both install what they need first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo serve test lint schema services bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make demo: set up on a fresh machine, seed the demo org, serve on the embedded defaults
demo: install
	$(BIN)/emban demo
	$(BIN)/emban serve

serve: install
	$(BIN)/emban serve

## make test: install, start PostgreSQL/Redis if needed, lint, type-check, run every test
test: install services lint
	$(BIN)/pytest

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict emban

schema: install
	$(BIN)/emban schema

## make bench: ingest and query figures next to the raw engine (not pass/fail)
bench: install
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.query
	$(BIN)/python -m bench.live

clean:
	rm -rf $(VENV) .emban .mypy_cache .ruff_cache .pytest_cache
