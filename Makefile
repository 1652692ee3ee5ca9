# imgcls-desktop: `make run` starts the app, `make test` runs every test.
# Both build a local virtual environment first, with the newest supported Python found
# (3.13 down to 3.9; PYTHON=/path/to/python chooses one).
#   DEPS=newest|oldest  which tested set of versions (constraints/<set>.txt); oldest gets its
#                       own .venv-oldest
#   GPU=cu112|cu117     MXNet's CUDA build instead of the CPU one
#   TESTS=tests/core    run only these tests

DEPS ?= newest
VENV ?= .venv$(if $(filter-out newest,$(DEPS)),-$(DEPS))
MXNET := $(if $(GPU),mxnet-$(GPU),mxnet)==1.9.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(DEPS)-$(if $(GPU),$(GPU),cpu)
TESTS ?=

.PHONY: run test lint bench clean system-deps

run: $(STAMP)
	$(BIN)/imgcls-desktop

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/pack.py

system-deps:
	sh packaging/system-deps.sh

$(STAMP): pyproject.toml constraints/$(DEPS).txt packaging/make-venv.sh
	@rm -f $(VENV)/.installed-*
	sh packaging/make-venv.sh $(VENV) constraints/$(DEPS).txt $(MXNET) $(PYTHON)
	touch $(STAMP)

clean:
	rm -rf .venv .venv-* build *.egg-info .pytest_cache .ruff_cache
