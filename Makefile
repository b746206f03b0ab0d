# Two commands on a fresh machine: `make demo` (main job, offline, CPU) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint install clean chromium

$(BIN)/evalsuite: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/evalsuite

demo: $(BIN)/evalsuite
	$(BIN)/evalsuite compare checkpoints/digits-dense.pt checkpoints/digits-erk-0.1.pt --out reports/demo --force

lint: $(BIN)/evalsuite
	$(BIN)/ruff check evalsuite tests benchmarks
	$(BIN)/ruff format --check evalsuite tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy evalsuite

# report.html is checked in headless Chromium (Debian's package); in CI its absence is a failure
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the browser test will be skipped (set EVALSUITE_REQUIRE_CHROMIUM=1 to fail)"

test: $(BIN)/evalsuite lint chromium
	EVALSUITE_REQUIRE_CHROMIUM=$${EVALSUITE_REQUIRE_CHROMIUM:-$${CI:+1}} $(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
