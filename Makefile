# Two commands on a fresh machine: `make demo` (main job, offline, CPU) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint install clean

$(BIN)/evalsuite: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/evalsuite

demo: $(BIN)/evalsuite
	$(BIN)/evalsuite demo

lint: $(BIN)/evalsuite
	$(BIN)/ruff check evalsuite tests benchmarks
	$(BIN)/ruff format --check evalsuite tests benchmarks

test: $(BIN)/evalsuite lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
