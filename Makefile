# imgcls-desktop: `make run` starts the app, `make test` runs every test.
# Both build a local virtual environment in .venv first (Python 3.9-3.11).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean system-deps

run: $(STAMP)
	$(BIN)/imgcls-desktop

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/pack.py

system-deps:
	sh packaging/system-deps.sh

$(STAMP): pyproject.toml
	@sh packaging/system-deps.sh $(if $(shell $(PYTHON) -c "import ensurepip" 2>/dev/null || echo no),--with-venv,)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
