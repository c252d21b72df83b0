# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format mypy bench docs screenshot chromium clean all

# An editable install leaves the package's own modules uncompiled, and where Python
# runs with PYTHONDONTWRITEBYTECODE set every process compiles them again (about
# 0.3 s of each command's start): they are compiled here once, and again before tests.
BYTECODE := $(BIN)/python -m compileall -q orchestrator

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BYTECODE)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@rm -f demo.db
	$(BIN)/orchestrator submit jobs.example.yaml --sandbox --db demo.db --out outputs ; \
	code=$$?; \
	$(BIN)/orchestrator report --db demo.db --format json -o outputs/report.json && \
	$(BIN)/orchestrator report --db demo.db --out outputs --format html -o outputs/report.html && \
	echo "Outputs: ./outputs/   Report: ./outputs/report.json and ./outputs/report.html   Queue: ./demo.db"; \
	exit $$code

# The browser tests drive Debian's Chromium (never a downloaded browser): installed
# here when it is missing.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# One worker per core: most tests wait on a sandbox's scaled clock or a subprocess.
# Bytecode is written during the tests (whatever PYTHONDONTWRITEBYTECODE says): each
# worker collects every test module, and every command a test runs imports the
# package; compiled once, they all start faster.
test: $(STAMP) chromium
	$(BYTECODE)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check orchestrator tests migrations
	$(BIN)/ruff format --check orchestrator tests migrations

format: $(STAMP)
	$(BIN)/ruff format orchestrator tests migrations
	$(BIN)/ruff check --fix orchestrator tests migrations

mypy: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BYTECODE)
	$(BIN)/python -m bench

all: lint mypy test

clean:
	rm -rf $(VENV) outputs demo.db .pytest_cache tests/artifacts

docs: $(STAMP)
	$(BIN)/python -m tests.unit.test_readme

# docs/report.png: the demo's contact sheet, rendered by Chromium.
screenshot: demo chromium
	$(BIN)/python docs/screenshot.py outputs/report.html docs/report.png
