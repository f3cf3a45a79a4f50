# make setup: idempotent; creates .venv (Python 3.12), installs dependencies, generates the codecs,
# builds the Cython extensions and installs the `lob` command into .venv/bin.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= $(shell command -v python3.12 2>/dev/null || pyenv which python3.12 2>/dev/null || echo python3.12)
SOURCES := setup.py pyproject.toml $(shell find schemas codecs lob transport tools -type f \( -name '*.py' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.xml' -o -name '*.h' \) -not -path 'lob/sbe/messages.*' 2>/dev/null)

.PHONY: setup run test bench clean

setup: $(VENV)/.built

$(PY):
	$(SYSTEM_PYTHON) -m venv $(VENV)

$(VENV)/.deps: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.built: $(VENV)/.deps $(SOURCES)
	flock $(VENV)/.lock $(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $@

run: setup
	$(VENV)/bin/lob demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_engine.py

clean:
	rm -rf build $(VENV) *.egg-info lob/sbe/messages.pyx lob/sbe/messages.pxd
	find codecs lob transport tools -name '*.so' -o -name '*.c' | grep -v '\.h$$' | xargs -r rm -f
