# imgcls-desktop: `make run` starts the app, `make test` runs every test.
# Both build a local virtual environment first, with the newest supported Python found
# (3.13 down to 3.9; PYTHON=/path/to/python chooses one).
#   DEPS=newest|oldest  which tested set of versions (constraints/<set>.txt); oldest gets its
#                       own .venv-oldest
#   GPU=cu112|cu117     MXNet's CUDA build instead of the CPU one
#   TESTS=tests/core    run only these tests
# `make bench` runs every benchmark (small sizes, a few minutes) and prints one table of
# figures, anchors, ratios and targets; BENCH=pack,predict_throughput runs only those.

DEPS ?= newest
VENV ?= .venv$(if $(filter-out newest,$(DEPS)),-$(DEPS))
MXNET := $(if $(GPU),mxnet-$(GPU),mxnet)==1.9.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(DEPS)-$(if $(GPU),$(GPU),cpu)
TESTS ?=
BENCH ?=

.PHONY: run test lint bench clean system-deps

run: $(STAMP)
	$(BIN)/imgcls-desktop

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(if $(BENCH),--only $(BENCH))

system-deps:
	sh packaging/system-deps.sh

$(STAMP): pyproject.toml constraints/$(DEPS).txt packaging/make-venv.sh
	@rm -f $(VENV)/.installed-*
	sh packaging/make-venv.sh $(VENV) constraints/$(DEPS).txt $(MXNET) $(PYTHON)
	touch $(STAMP)

clean:
	rm -rf .venv .venv-* build dist *.egg-info .pytest_cache .ruff_cache

# --- Bundle: a self-contained one-folder build (PyInstaller); see packaging/README.md -------
# `make bundle` builds dist/imgcls-desktop/ (again when the app or the spec changed) from its
# own venv, build/bundle-venv, which holds only the app (installed non-editable, as users get
# it) and PyInstaller, made anew when pyproject.toml changes. `make bundle-test` smoke-tests
# the bundle on its own, under Xvfb (a few minutes: not part of `make test`).
BUNDLE_VENV := build/bundle-venv
BUNDLE_STAMP := $(BUNDLE_VENV)/.installed
BUNDLE := dist/imgcls-desktop
BUNDLE_INPUTS := packaging/imgcls-desktop.spec \
	$(shell find imgcls_desktop packaging/launchers -name __pycache__ -prune -o -type f -print)

.PHONY: bundle bundle-test

bundle: $(BUNDLE)/imgcls

bundle-test: $(BUNDLE)/imgcls
	bash packaging/bundle-test.sh $(BUNDLE)

# setuptools' build/lib would keep files deleted from the sources since its last build.
$(BUNDLE)/imgcls: $(BUNDLE_STAMP) $(BUNDLE_INPUTS)
	rm -rf build/lib
	$(BUNDLE_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall .
	$(BUNDLE_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/imgcls-desktop.spec
	@du -sh $(BUNDLE)

# The same versions and MXNet build as the app's venv (packaging/make-venv.sh), then the app
# installed non-editable, as users get it, by the bundle's rule above.
$(BUNDLE_STAMP): pyproject.toml constraints/$(DEPS).txt packaging/make-venv.sh
	rm -rf $(BUNDLE_VENV)
	sh packaging/make-venv.sh $(BUNDLE_VENV) constraints/$(DEPS).txt $(MXNET) $(PYTHON)
	$(BUNDLE_VENV)/bin/python -m pip install --quiet pyinstaller
	touch $(BUNDLE_STAMP)
