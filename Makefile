# Two entry points (README "Quick start"): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= demo

.PHONY: demo test install bench lint clean

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

test: $(BIN)/kpireport
	@scripts/system-deps.sh --test
	$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider

bench: install
	$(BIN)/python scripts/bench.py

lint: $(BIN)/kpireport
	$(BIN)/ruff check kpireport tests scripts

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
