# The README's two commands: `make demo` (set up, run the main job) and `make test` (set up, run
# every test). Both start with scripts/setup.sh, which is idempotent and fast once done.
SHELL := /bin/bash
VENV := .venv
LOCAL_PG_URL := postgresql+psycopg://postgres@127.0.0.1:5432/test
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="tests/store -x"`.
PYTEST_ARGS ?=
# Test processes (pytest-xdist; 0 = all in this one). Each takes whole files, the costliest first
# (tests/conftest.py orders them by their `slow` mark): much of the suite waits on Chromium, servers
# and subprocesses, so two processes fill two cores. A test process that crashes (a segfault) ends the
# run, naming its test: pytest-xdist 3.8 replacing it under --dist loadfile can wait forever instead.
PYTEST_WORKERS ?= 2

.PHONY: setup test lint demo

setup:
	@bash scripts/setup.sh

# Postgres tests run on CORPUS_TEST_PG_URL, else on the local Postgres when it answers, else skip.
test: setup
	@pg_url="$${CORPUS_TEST_PG_URL:-}"; \
	if [ -n "$$pg_url" ]; then \
		echo "==> Postgres tests: on (CORPUS_TEST_PG_URL)"; \
	elif $(VENV)/bin/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2).close()" 2>/dev/null; then \
		pg_url="$(LOCAL_PG_URL)"; echo "==> Postgres tests: on ($$pg_url)"; \
	else \
		echo "==> Postgres tests: skipped (no CORPUS_TEST_PG_URL, nothing on 127.0.0.1:5432)"; \
	fi; \
	CORPUS_TEST_PG_URL="$$pg_url" $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--max-worker-restart 0 \
		$(PYTEST_ARGS)

# Lint, format and types, as CI checks them before the tests (ruff and mypy come with the test extras).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The main job: the whole pipeline on the bundled replica site, into ./corpus-demo (SQLite).
demo: setup
	$(VENV)/bin/corpus demo --out corpus-demo
