# Every target works on a fresh clone: it makes .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest bench bench-scale demo lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check toolkit tests benchmarks scripts
	$(BIN)/ruff format --check toolkit tests benchmarks scripts
	$(BIN)/python scripts/generate_blocking.py --check

typecheck: $(STAMP)
	$(BIN)/mypy --strict toolkit
	$(BIN)/mypy --strict tests/typing

# The tests and benchmarks run beside a throwaway PostgreSQL server (scripts/with-postgres) when this machine
# has PostgreSQL 15's binaries; the PostgreSQL tests skip without them (CI requires them).
pytest: $(STAMP)
	scripts/with-postgres $(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	scripts/with-postgres $(BIN)/python -m benchmarks

# 1M and 10M photometry rows (sites built once into .bench-cache; the 10M one takes ~2 min and ~9 GiB)
bench-scale: $(STAMP)
	scripts/with-postgres $(BIN)/python -m benchmarks.scale

demo: $(STAMP)
	$(BIN)/contimg demo demo-site

# The main job: the demo site (built once) and JupyterLab on notebooks/, pointed at it. It prints the URL.
lab: $(STAMP)
	$(BIN)/contimg lab demo-site

clean:
	rm -rf $(VENV) .bench-cache bench-results .mypy_cache .ruff_cache .pytest_cache
