# The quick start is two commands: `make demo` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format system bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests start as real servers (redis-server, ...).
system:
	scripts/install-system-deps.sh

demo: $(STAMP)
	$(BIN)/loopline demo fraud

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: system $(STAMP) lint
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

bench: $(STAMP) system
	$(BIN)/loopline bench events --backend embedded
	$(BIN)/loopline bench events --backend kafka
	$(BIN)/loopline bench events --backend redis
	$(BIN)/loopline bench features
	$(BIN)/loopline bench training --quality
	$(BIN)/loopline bench serving
	$(BIN)/loopline bench serving --only redis
	$(BIN)/loopline bench soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
