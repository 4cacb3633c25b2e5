# Jinqiu — developer and CI entry points.  `make help` lists the targets.
#
# Needs only make and Python >= 3.11: the virtual environment (.venv) is created and the
# project installed (`pip install -e '.[dev]'`) on first use, and re-installed whenever
# pyproject.toml changes (stamp file .venv/.installed).  Pick the interpreter with
# `make PYTHON=/path/to/python3.12 ...`; by default scripts/find-python chooses one.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

# The PostgreSQL server of the tests and the bench (trust auth, database `test`).
PG_URL  ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

# Extra arguments, e.g. `make test PYTEST_ARGS='-x -k engine'`, `make demo DEMO_ARGS='--cases 50'`.
PYTEST_ARGS ?=
DEMO_ARGS   ?=
BENCH_ARGS  ?=

# The suite runs in PYTEST_WORKERS processes (pytest-xdist), each with its own SQLite files and
# PostgreSQL schema; a file's tests stay in one process (--dist loadfile), so its module fixtures
# are built once. PYTEST_WORKERS=0: everything in one process.
PYTEST_WORKERS ?= 2
PYTEST_XDIST   := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) --durations=15

.PHONY: help venv install browser demo test lint typecheck pytest format-check bench clean distclean

help:
	@echo "make demo          run the Weihai 2024 demo (.venv/bin/jinqiu demo) into ./jinqiu.db (DEMO_ARGS=--reset: again)"
	@echo "make test          lint + format check + type check + the whole pytest suite (what CI runs)"
	@echo "make lint          ruff check ."
	@echo "make typecheck     mypy (strict on states, workflow, notifications, api)"
	@echo "make pytest        the pytest suite only (PYTEST_ARGS=... to pass options; PYTEST_WORKERS=0"
	@echo "                   runs it in one process instead of two)"
	@echo "make format-check  ruff format --check . (part of 'make test')"
	@echo "make bench         python -m bench NAME for NAME in BENCHES ($(BENCHES)), each on SQLite"
	@echo "                   then on PostgreSQL ($(PG_URL))"
	@echo "make install       create .venv and install the project, if not up to date; as root"
	@echo "                   with apt-get, also Debian's chromium + fonts-noto-cjk (make browser)"
	@echo "make clean         remove caches and build products (keeps .venv and *.db files)"
	@echo "make distclean     clean, and remove .venv too"

# -- the virtual environment ---------------------------------------------------------------

$(BIN)/python:
	@py=$$(bash scripts/find-python) || exit 1; \
	echo "creating $(VENV) with $$py ($$("$$py" -c 'import sys; print(sys.version.split()[0])'))"; \
	"$$py" -m venv $(VENV) || { rm -rf $(VENV); echo "error: '$$py -m venv $(VENV)' failed" >&2; exit 1; }

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing the project into $(VENV): pip install -e '.[dev]'"
	$(BIN)/python -m pip install --no-input -e '.[dev]'
	@touch $@

venv: $(BIN)/python
install: $(STAMP) browser

# The browser tests (tests/api/test_browser.py) drive Debian's Chromium through Playwright's
# `executable_path`; Playwright never downloads a browser of its own. Missing, it is installed
# from Debian when we are root with apt-get (CI, the project's machines); anywhere else this
# only prints a hint and those tests skip (in CI they fail instead). A failed apt-get does not
# stop the install: the test run then says what is missing.
CHROMIUM     := /usr/bin/chromium
BROWSER_PKGS := chromium fonts-noto-cjk

browser:
	@missing=""; \
	[ -x $(CHROMIUM) ] || missing="chromium"; \
	if command -v dpkg-query >/dev/null 2>&1 && ! dpkg-query -W -f='$${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'install ok installed'; then \
		missing="$$missing fonts-noto-cjk"; \
	fi; \
	missing="$${missing# }"; \
	if [ -z "$$missing" ]; then \
		echo "browser tests: $(CHROMIUM) and fonts-noto-cjk are installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser tests: missing $$missing; installing Debian's $(BROWSER_PKGS):"; \
		echo "  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS); } \
			|| echo "warning: apt-get failed (exit $$?): the browser tests will fail in CI and skip elsewhere"; \
	else \
		echo "hint: missing $$missing ($(CHROMIUM), fonts-noto-cjk), and not root with apt-get:"; \
		echo "      without chromium the browser tests (tests/api/test_browser.py) skip; without the"; \
		echo "      fonts their screenshots show no Chinese. To install both on Debian/Ubuntu:"; \
		echo "      sudo apt-get install $(BROWSER_PKGS)"; \
	fi

# -- checks --------------------------------------------------------------------------------

lint: $(STAMP)
	$(BIN)/ruff check .

format-check: $(STAMP)
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# Runs all three even when one fails (so one run shows every problem), then fails if any
# did.  pytest's own exit status is kept (5 = no tests collected is a failure too).
test: $(STAMP)
	@lint=0; types=0; tests=0; \
	echo "== ruff check ."; $(BIN)/ruff check . || lint=$$?; \
	echo "== ruff format --check ."; $(BIN)/ruff format --check . || lint=$$?; \
	echo "== mypy"; $(BIN)/mypy || types=$$?; \
	echo "== pytest $(PYTEST_XDIST) $(PYTEST_ARGS)"; $(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS) || tests=$$?; \
	say() { if [ "$$2" -eq 0 ]; then echo "  $$1: ok"; else echo "  $$1: FAILED (exit $$2)"; fi; }; \
	echo "== summary"; say "ruff check + format" $$lint; say "mypy" $$types; say "pytest" $$tests; \
	if [ $$tests -ne 0 ]; then exit $$tests; fi; \
	if [ $$lint -ne 0 ] || [ $$types -ne 0 ]; then exit 1; fi

# -- running it ----------------------------------------------------------------------------

demo: $(STAMP)
	$(BIN)/jinqiu demo $(DEMO_ARGS)

# The bench gets its database the way the service does, from JINQIU_DATABASE_URL: a fresh
# SQLite file in a temporary directory, then the PostgreSQL server. BENCHES picks the benchmarks
# (sweep, dashboard and http load a province, bulk fires 10,000 transitions twice: a few
# minutes each), e.g. `make bench BENCHES=sweep`.
BENCHES ?= lifecycle sweep dashboard http bulk

bench: $(STAMP)
	@tmp=$$(mktemp -d -t jinqiu-bench-XXXXXX); trap 'rm -rf "$$tmp"' EXIT; \
	for name in $(BENCHES); do \
		echo "== bench $$name on SQLite ($$tmp/$$name.db)"; \
		JINQIU_DATABASE_URL="sqlite:///$$tmp/$$name.db" $(BIN)/python -m bench $$name $(BENCH_ARGS) || exit $$?; \
		echo "== bench $$name on PostgreSQL ($(PG_URL))"; \
		JINQIU_DATABASE_URL="$(PG_URL)" $(BIN)/python -m bench $$name $(BENCH_ARGS) || exit $$?; \
	done

# -- cleaning up ---------------------------------------------------------------------------

# Never deletes *.db: ./jinqiu.db is the service's default database.
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
