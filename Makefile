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

# MXNet last and without its dependencies, as its metadata caps numpy below 2 (a no-op while
# pyproject.toml installs it); requests, which mxnet.gluon imports, with its own.
$(BUNDLE_STAMP): pyproject.toml
	@sh packaging/system-deps.sh
	rm -rf $(BUNDLE_VENV)
	$(PYTHON) -m venv $(BUNDLE_VENV)
	$(BUNDLE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BUNDLE_VENV)/bin/python -m pip install --quiet . pyinstaller requests
	$(BUNDLE_VENV)/bin/python -m pip install --quiet --no-deps mxnet==1.9.1
	touch $(BUNDLE_STAMP)
