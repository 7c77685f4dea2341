# Everything starts from python3 alone: the first target creates .venv and installs the
# pinned set in requirements.lock, so a reviewer can rebuild a model's environment later.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   := data

.PHONY: setup demo test lint typecheck bench clean team-up team-down

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(DATA)/credit.parquet: $(STAMP)
	$(VENV)/bin/creditgov synth credit --rows 50000 --seed 7 --out $@ --truth $(DATA)/credit_truth.parquet

$(DATA)/transactions.parquet: $(STAMP)
	$(VENV)/bin/creditgov synth fraud --rows 200000 --seed 7 --out $@ --truth $(DATA)/transactions_truth.parquet

demo: $(DATA)/credit.parquet
	$(VENV)/bin/creditgov train configs/credit_scoring.yaml --json out/demo.json

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 2 --dist loadgroup --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m benchmarks

# Team mode: one MLflow server on PostgreSQL with basic auth (README "Team mode").
TEAM := $(PY) -m server

team-up: $(STAMP)
	$(TEAM) up

team-down: $(STAMP)
	$(TEAM) down

clean:
	rm -rf $(VENV) mlruns mlartifacts mlflow.db out .pytest_cache .mypy_cache .ruff_cache
