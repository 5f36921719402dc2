# Two entry points: `make demo` renders the default project and runs its pipeline
# on this machine; `make test` runs the whole suite. Both use the venv in .venv.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
BASE_PYTHON := $(shell command -v python3.11 || command -v python3)
DEMO_DIR := build/demo
DEFAULT_PROJECT := diabetes-blood-pressure
DEFAULT_PACKAGE := diabetes_blood_pressure
EXAMPLE_DIR := examples/$(DEFAULT_PROJECT)

.PHONY: demo example test lint format benchmark clean

$(INSTALLED): requirements-dev.txt
	$(BASE_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(INSTALLED)
	rm -rf $(DEMO_DIR)
	$(PYTHON) -m cookiecutter --no-input . --output-dir $(DEMO_DIR)
	cd $(DEMO_DIR)/$(DEFAULT_PROJECT) && PYTHONPATH=src $(abspath $(PYTHON)) -m $(DEFAULT_PACKAGE) run --local

# The committed example is the default render, byte for byte (tests/test_lifecycle.py
# checks it): render into a scratch folder, then swap it in only if the render succeeded.
# --default-config: a personal ~/.cookiecutterrc must not change the example.
example: $(INSTALLED)
	mkdir -p build examples
	scratch=$$(mktemp -d build/example.XXXXXX) && \
	  $(PYTHON) -m cookiecutter --no-input --default-config . --output-dir "$$scratch" >/dev/null && \
	  rm -rf $(EXAMPLE_DIR) && mv "$$scratch/$(DEFAULT_PROJECT)" $(EXAMPLE_DIR); \
	  status=$$?; rm -rf "$$scratch"; exit $$status

test: $(INSTALLED)
	$(PYTHON) -m pytest -n 2 tests

lint: $(INSTALLED)
	$(PYTHON) -m ruff check hooks tests benchmarks
	$(PYTHON) -m ruff format --check hooks tests benchmarks

format: $(INSTALLED)
	$(PYTHON) -m ruff check --fix hooks tests benchmarks
	$(PYTHON) -m ruff format hooks tests benchmarks

benchmark: $(INSTALLED)
	$(PYTHON) benchmarks/local_run.py

clean:
	rm -rf $(VENV) build
