# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format mypy bench docs clean all

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@rm -f demo.db
	$(BIN)/orchestrator submit jobs.example.yaml --sandbox --db demo.db --out outputs ; \
	code=$$?; \
	$(BIN)/orchestrator report --db demo.db --format json -o outputs/report.json && \
	echo "Outputs: ./outputs/   Report: ./outputs/report.json   Queue: ./demo.db"; \
	exit $$code

# One worker per core: most tests wait on a sandbox's scaled clock or a subprocess.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check orchestrator tests migrations
	$(BIN)/ruff format --check orchestrator tests migrations

format: $(STAMP)
	$(BIN)/ruff format orchestrator tests migrations
	$(BIN)/ruff check --fix orchestrator tests migrations

mypy: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

all: lint mypy test

clean:
	rm -rf $(VENV) outputs demo.db .pytest_cache

docs: $(STAMP)
	$(BIN)/python -m tests.unit.test_readme
