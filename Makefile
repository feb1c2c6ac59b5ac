# Two entry points (README "Quick start"): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= demo

# axe-core (npm) for the accessibility checks of the browser tests (tests/test_web_a11y.py)
AXE_VERSION := 4.14.1
AXE := .cache/axe/node_modules/axe-core/axe.min.js

.PHONY: demo test test-deps install bench lint clean

$(BIN)/kpireport: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,dask]'
	@touch $@

install: $(BIN)/kpireport
	@scripts/system-deps.sh

demo: install
	@mkdir -p $(OUT)
	$(BIN)/kpireport init $(OUT)/acme.xlsx --sample acme --force
	$(BIN)/kpireport run $(OUT)/acme.xlsx --out $(OUT)/reports

test: $(BIN)/kpireport test-deps
	$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider

test-deps:
	@scripts/system-deps.sh --test
	@scripts/test-deps.sh $(AXE_VERSION)

bench: install
	$(BIN)/python scripts/bench.py

lint: $(BIN)/kpireport
	$(BIN)/ruff check kpireport tests scripts

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .cache/axe
