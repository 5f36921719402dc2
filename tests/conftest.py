"""Bakes of the template for a matrix of option combinations, shared by the tests.

Each configuration is rendered once per test session (per xdist worker) into a
scratch folder with cookiecutter's own API, as `cookiecutter <template>` would.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config

if TYPE_CHECKING:
    from azure_render import TrainedRender

TEMPLATE_DIR = Path(__file__).resolve().parents[1]

# MLflow posts usage data from every process that uses it unless told not to (and keeps an id in ~/.config):
# tests never touch the network, and every process they start inherits this.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

# The suite already keeps every core busy with processes of its own (xdist's workers, the local runner's steps side
# by side), so the OpenMP and BLAS pools of scikit-learn and numpy, one thread per core in each process, only
# oversubscribe the cores and spin while waiting for them: a pipeline run took 9.5-13 s of CPU with them, 7 s
# without. One thread per process, as scikit-learn limits its own test suite's xdist workers (sklearn/conftest.py).
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

# `make test` points HOME and the XDG folders at build/test-env; a plain `pytest` would still let the renders' steps
# keep matplotlib's font cache in ~/.cache/matplotlib. Here it lands where `make test` puts it.
os.environ.setdefault("MPLCONFIGDIR", str(TEMPLATE_DIR / "build" / "test-env" / "cache" / "matplotlib"))

# No test reaches the network: any request for an address other than the loopback fakes goes to a proxy on a closed
# loopback port, so it fails at once instead of leaving the machine; no workspace is named, so no command of a render
# looks for one; and a render's commands write no bytecode into it.
CLOSED_LOOPBACK_PROXY = "http://127.0.0.1:9"
OFFLINE = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "HTTP_PROXY": CLOSED_LOOPBACK_PROXY,
    "HTTPS_PROXY": CLOSED_LOOPBACK_PROXY,
    "http_proxy": CLOSED_LOOPBACK_PROXY,
    "https_proxy": CLOSED_LOOPBACK_PROXY,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
RENDER_ENV = {
    **os.environ,
    **OFFLINE,
    "PYTHONDONTWRITEBYTECODE": "1",
    "AZURE_SUBSCRIPTION_ID": "",
    "AZURE_RESOURCE_GROUP": "",
    "AZUREML_WORKSPACE_NAME": "",
}


def run_in(project: Path, command: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``command`` in a render's folder, with its package importable as its own venv would have it."""
    env = {**RENDER_ENV, "PYTHONPATH": str(project / "src")}
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def kit(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The engine's command line in a render, as its Makefile runs it (`.venv/bin/aml-pipeline-kit ...`), with the
    engine of this venv: the version the render's [tool.uv.sources] installs (tests/test_engine_install.py)."""
    return run_in(project, [sys.executable, "-m", "aml_pipeline_kit", *args], timeout)


# Every model, every compute tier and every CI choice, custom names, and workspace settings filled in.
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "default": {},
    "ridge-only": {"project_name": "Pressure Model Search", "model": "ridge"},
    "random-forest-low-priority": {
        "project_name": "Clinic Vitals",
        "model": "random_forest",
        "__compute_tier": "low_priority",
        "__compute_name": "vitals-cluster01",
        "__compute_size": "Standard_E4s_v3",
        "__compute_min_instances": "1",
        "__compute_max_instances": "8",
        "__compute_idle_seconds": "600",
        "__experiment_name": "vitals_experiments",
        "__registered_model_name": "vitals-bp",
        "__data_asset_name": "vitals_csv",
        "__environment_name": "vitals-runtime",
        "__test_size": "0.25",
        "__random_seed": "7",
        "ci": "azure-devops",
    },
    "gradient-boosting-workspace": {
        "project_name": "A Rather Long Project Name For Predicting Diastolic Blood Pressure In Clinics",
        "model": "hist_gradient_boosting",
        "__azure_subscription_id": "12345678-9abc-def0-1234-56789abcdef0",
        "__azure_resource_group": "rg-ml-prod",
        "__azure_workspace": "mlw-prod",
        "description": 'Quotes "here", colons: there, # hashes and ünïcödé — all data.',
        "author_name": 'O\'Brien: "ML" #2',
        "ci": "none",
    },
}


@dataclass(frozen=True)
class Bake:
    name: str
    context: dict[str, str]
    values: dict[str, Any]
    path: Path

    @property
    def package(self) -> str:
        return self.values["__package_name"]

    def value(self, key: str) -> str:
        """The value the render used: typed in, or the template default as cookiecutter derives it."""
        return self.values[key]


def rendered_values(context: dict[str, str]) -> dict[str, Any]:
    """What cookiecutter makes of cookiecutter.json and ``context`` without prompting."""
    full = generate_context(context_file=str(TEMPLATE_DIR / "cookiecutter.json"), extra_context=context)
    return prompt_for_config(full, no_input=True)


def assert_known(context: dict[str, str]) -> None:
    """Cookiecutter silently ignores a name cookiecutter.json lacks (a private one given without its ``__``)."""
    variables = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    unknown = sorted(set(context) - set(variables))
    assert not unknown, f"not variables of cookiecutter.json: {unknown}"


def bake(context: dict[str, str], output_dir: Path, **options: Any) -> Path:
    """``cookiecutter --no-input --default-config`` of this template into ``output_dir``, as ``make example`` runs it:
    a personal ~/.cookiecutterrc changes nothing, and the replay file cookiecutter writes on every render lands in
    ``output_dir`` rather than in ~/.cookiecutter_replay. ``options``: more of cookiecutter()'s arguments."""
    assert_known(context)
    config = {"replay_dir": str(output_dir / ".cookiecutter_replay")}
    project = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context=context,
        output_dir=str(output_dir),
        default_config=config,
        **options,
    )
    return Path(project)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (pipelines, a render's own suite), so that with xdist they start at once and the quick
    ones fill in around them. First of all those that share the trained render: xdist's worksteal hands each worker a
    contiguous half of this order and lets the other take work only from the end, so they stay together on the first
    worker and the render is trained once."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, "trained_render" not in item.fixturenames))


@pytest.fixture(scope="session")
def bakes(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Bake]:
    """A configuration's bake by its name, made once per session (per xdist worker) and shared: the tests that take
    one read it and leave it as rendered (a test that writes copies it, or bakes its own)."""

    @functools.cache
    def named_bake(name: str) -> Bake:
        context = CONFIGURATIONS[name]
        return Bake(name, context, rendered_values(context), bake(context, tmp_path_factory.mktemp(name)))

    return named_bake


@pytest.fixture(scope="session", params=list(CONFIGURATIONS))
def baked(request: pytest.FixtureRequest, bakes: Callable[[str], Bake]) -> Bake:
    return bakes(request.param)


@pytest.fixture(scope="session")
def trained_render(tmp_path_factory: pytest.TempPathFactory) -> TrainedRender:
    """The default render after one local run through its CLI, shared by the tests of its model: its register step
    on Azure ML's side, its online deployment; a test may add runs to it, or change a file for its own duration only."""
    from azure_render import train_default_render  # it imports this module

    return train_default_render(tmp_path_factory)
