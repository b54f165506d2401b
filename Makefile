# Developer and CI entry points. Every target creates and uses its own venv (.venv).
#   make test       lint (ruff check, ruff format --check, mypy) + the whole test suite (what CI runs)
#   make test-fast  lint + everything except e2e and slow tests
#   make golden     regenerate golden files (then review `git diff tests/golden`)
#   make registry   re-scan registry entries (SLUGS="a b" for some), then check the registry

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
PORT ?= 8000

.PHONY: venv test test-fast lint golden site build bench registry clean cli-docs

venv: $(STAMP)

# Re-install only when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict intercept generator
	$(BIN)/mypy tests

# pytest exits 5 when it collects nothing; say so rather than fail silently.
RUN_PYTEST = rc=0; $(BIN)/pytest $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest collected no tests" >&2; fi; exit $$rc

test: lint
	$(call RUN_PYTEST,)

test-fast: lint
	$(call RUN_PYTEST,-m "not e2e and not slow")

golden: venv
	$(BIN)/python -m tests.update_golden

build: venv
	$(BIN)/intercept build

site: venv
	$(BIN)/intercept serve --port $(PORT)

bench: venv
	$(BIN)/python bench/classifier_eval.py
	$(BIN)/python bench/proxy_latency.py
	$(BIN)/python bench/http_latency.py
	$(BIN)/python bench/site_build.py

# Re-scan registry entries from their recorded provenance: `make registry` or `make registry SLUGS="time git"`.
registry: venv
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/intercept registry refresh $(SLUGS)
	$(BIN)/intercept registry check

clean:
	rm -rf site .site.cache dist build .pytest_cache .mypy_cache .ruff_cache

# Regenerate docs/CLI.md from the click commands (then review `git diff docs/CLI.md`).
cli-docs: venv
	$(BIN)/python -m tests.cli.cli_reference
