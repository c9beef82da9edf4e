# Two commands do all set-up on a fresh machine (see README):
#   make demo   creates .venv, installs posterax and runs `posterax demo`
#   make test   creates/updates .venv, then lint, layer contracts and the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-quick test test-slow lint install clean

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/posterax demo

demo-quick: $(STAMP)
	$(BIN)/posterax demo --quick

lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest
	# The same programs on 4 forced host devices: sharded results equal one-device results.
	XLA_FLAGS=--xla_force_host_platform_device_count=4 $(BIN)/python -m pytest tests/devices -p no:cacheprovider

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) posterax-demo .pytest_cache .ruff_cache
