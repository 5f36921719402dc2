# Two entry points: `make demo` renders the default project and runs its pipeline
# on this machine; `make test` runs the whole suite. Both use the venv in .venv.
VENV := .venv
PYTHON := $(VENV)/bin/python
UV := $(VENV)/bin/uv
INSTALLED := $(VENV)/.installed
LOCK := requirements-dev.lock
TEMPLATE_PROJECT := {{cookiecutter.project_slug}}
ENGINE := aml-pipeline-kit
BASE_PYTHON := $(shell command -v python3.11 || command -v python3)
DEMO_DIR := build/demo
DEFAULT_PROJECT := diabetes-blood-pressure
EXAMPLE_DIR := examples/$(DEFAULT_PROJECT)
# Given explicitly, this config replaces a personal ~/.cookiecutterrc, and it keeps the replay file cookiecutter
# writes on every render under build/ instead of ~/.cookiecutter_replay: nothing is written into HOME.
COOKIECUTTER_CONFIG := build/cookiecutter.yml

.PHONY: demo example lock test test-fast lint format benchmark benchmark-feedback benchmark-model-choice benchmark-peers benchmark-watch clean

# The venv holds exactly the versions in $(LOCK), installed by uv (the version the lock pins, from PyPI
# into the venv): seconds where pip takes minutes (`make benchmark-feedback` measures both), and the engine,
# $(ENGINE)/, editable: renders in the tests run with it as their own `make install` would give it. Compiled
# ahead: the tests run renders with PYTHONDONTWRITEBYTECODE, so nothing would keep bytecode compiled later.
$(UV):
	$(BASE_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet "$$(grep -m1 '^uv==' $(LOCK))"

$(INSTALLED): $(LOCK) $(ENGINE)/pyproject.toml | $(UV)
	$(UV) pip sync --quiet --compile-bytecode --python $(PYTHON) $(LOCK)
	$(UV) pip install --quiet --compile-bytecode --python $(PYTHON) --no-deps -e $(ENGINE)
	touch $@

# After editing requirements-dev.txt or the render's pyproject.toml (needs PyPI): the render's lock is
# resolved by the render's own `make lock` in the example, then the template's around it.
lock: | $(UV)
	$(MAKE) example
	$(MAKE) -C $(EXAMPLE_DIR) lock UV=$(abspath $(UV))
	cp $(EXAMPLE_DIR)/requirements.lock $(TEMPLATE_PROJECT)/requirements.lock
	UV_CUSTOM_COMPILE_COMMAND="make lock" $(UV) pip compile --quiet --universal --python-version 3.11 \
	  --no-annotate --output-file $(LOCK) requirements-dev.txt

$(COOKIECUTTER_CONFIG):
	mkdir -p $(@D)
	printf 'replay_dir: "%s"\n' "$(abspath build/cookiecutter-replay)" > $@

demo: $(INSTALLED) $(COOKIECUTTER_CONFIG)
	rm -rf $(DEMO_DIR)
	$(PYTHON) -m cookiecutter --no-input --config-file $(COOKIECUTTER_CONFIG) . --output-dir $(DEMO_DIR)
	cd $(DEMO_DIR)/$(DEFAULT_PROJECT) && $(abspath $(VENV))/bin/aml-pipeline-kit run --local

# The committed example is the default render, byte for byte (tests/test_lifecycle.py
# checks it): render into a scratch folder, then swap it in only if the render succeeded.
# $(COOKIECUTTER_CONFIG): a personal ~/.cookiecutterrc must not change the example. The scratch folder sits
# beside examples/, so the engine's path the render writes, relative to the project, holds in examples/ too.
example: $(INSTALLED) $(COOKIECUTTER_CONFIG)
	mkdir -p examples
	scratch=$$(mktemp -d .example.XXXXXX) && \
	  $(PYTHON) -m cookiecutter --no-input --config-file $(COOKIECUTTER_CONFIG) . --output-dir "$$scratch" >/dev/null && \
	  rm -rf $(EXAMPLE_DIR) && mv "$$scratch/$(DEFAULT_PROJECT)" $(EXAMPLE_DIR); \
	  status=$$?; rm -rf "$$scratch"; exit $$status

# The suite runs as on a fresh machine: HOME and the XDG folders point at empty folders made anew
# under build/, so no cache or setting of yours counts, and the run fails if anything was written
# into that HOME (tests write to pytest's temporary folders only).
TEST_ENV := $(abspath build/test-env)
TEST_HOME := $(TEST_ENV)/home
# Two workers that take tests from each other when idle (worksteal: the tests differ in length by a
# hundredfold, and plain load balancing left one worker idle for a minute); `make test XDIST=` runs one process.
XDIST ?= -n 2 --dist worksteal
define hermetic_pytest
	rm -rf $(TEST_ENV) && mkdir -p $(TEST_HOME)
	env HOME=$(TEST_HOME) XDG_CONFIG_HOME=$(TEST_ENV)/config XDG_CACHE_HOME=$(TEST_ENV)/cache \
	  XDG_DATA_HOME=$(TEST_ENV)/data XDG_STATE_HOME=$(TEST_ENV)/state \
	  MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true $(PYTHON) -m pytest $(1) $(PYTEST_ARGS)
	@written=$$(find $(TEST_HOME) -mindepth 1 | head -20); \
	  if [ -n "$$written" ]; then echo "error: the tests wrote into HOME ($(TEST_HOME)):"; echo "$$written"; exit 1; fi
endef

# The engine's own suite, then the template's; first the venv of Azure ML's inference server
# (tests/online_venv.py), which tests would otherwise fetch.
test: $(INSTALLED)  ## the whole suite
	$(PYTHON) tests/online_venv.py >/dev/null
	$(call hermetic_pytest,$(XDIST) -c $(ENGINE)/pyproject.toml --rootdir $(ENGINE) $(ENGINE)/tests)
	$(call hermetic_pytest,$(XDIST) tests)

test-fast: $(INSTALLED)  ## hooks, every configuration's static checks and `check`; no pipeline runs
	$(call hermetic_pytest,$(XDIST) -m "not slow" -c $(ENGINE)/pyproject.toml --rootdir $(ENGINE) $(ENGINE)/tests)
	$(call hermetic_pytest,$(XDIST) -m "not slow" tests)

LINTED := hooks local_extensions.py tests benchmarks

lint: $(INSTALLED)
	$(PYTHON) -m ruff check $(LINTED)
	$(PYTHON) -m ruff format --check $(LINTED)
	cd $(ENGINE) && $(abspath $(PYTHON)) -m ruff check . && $(abspath $(PYTHON)) -m ruff format --check .

format: $(INSTALLED)
	$(PYTHON) -m ruff check --fix $(LINTED)
	$(PYTHON) -m ruff format $(LINTED)
	cd $(ENGINE) && $(abspath $(PYTHON)) -m ruff check --fix . && $(abspath $(PYTHON)) -m ruff format .

# The local run against a plain script: cold, after editing one step's script, without reuse (medians of 3).
# SIZES=10000,1000000 adds synthetic data of those sizes.
benchmark: $(INSTALLED)
	$(PYTHON) benchmarks/local_run.py $(if $(SIZES),--sizes $(SIZES))

benchmark-feedback: $(INSTALLED)
	$(PYTHON) benchmarks/feedback.py

# Test RMSE of model=auto (the default) against every regressor it offers, on the diabetes sample and on synthetic
# data of a few shapes and sizes (SIZES=300,3000,30000 by default).
benchmark-model-choice: $(INSTALLED)
	$(PYTHON) benchmarks/model_choice.py $(if $(SIZES),--sizes $(SIZES))

benchmark-watch: $(INSTALLED)
	$(PYTHON) benchmarks/watch.py

# The peers benchmarks/peers.py measures the render beside, each in a venv of its own under build/venvs/ (ZenML caps
# pydantic below the render lock's), pinned by benchmarks/peers-<name>.txt: the template's venv stays without them.
PEER_VENVS := build/venvs
$(PEER_VENVS)/%/.installed: benchmarks/peers-%.txt | $(UV)
	rm -rf $(@D)
	$(UV) venv --quiet --python $(BASE_PYTHON) $(@D)
	$(UV) pip install --quiet --compile-bytecode --python $(@D)/bin/python -r $<
	touch $@

# The render's run --local (every step, nothing changed, one step's script edited) beside a hand-written script with
# MLflow, Kedro + kedro-mlflow and ZenML (left out, in one line, if it does not install), interleaved; ROUNDS=5;
# SUMMARY_JSON=file also writes the figures there.
benchmark-peers: $(INSTALLED) $(PEER_VENVS)/kedro/.installed
	$(MAKE) --no-print-directory $(PEER_VENVS)/zenml/.installed || echo "ZenML did not install: its rows are left out"
	$(PYTHON) benchmarks/peers.py --kedro $(PEER_VENVS)/kedro/bin/python --zenml $(PEER_VENVS)/zenml/bin/python \
	  $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(SUMMARY_JSON),--summary-json $(SUMMARY_JSON))

clean:
	rm -rf $(VENV) build
