"""Shared fixtures: the project, a scratch copy of it, and one completed local run of its pipeline.

A test that runs steps on this machine (it takes the ``step_host`` or ``completed_run`` fixture) is an
end-to-end test, marked ``e2e``: `make test` leaves those out and `make test-e2e` runs only them.
"""

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from aml_pipeline_kit.local_runner import RunResult
from aml_pipeline_kit.local_runs import run_pipeline_locally, start_step_host
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.step_host import StepHost

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMPONENTS_DIR = PROJECT_ROOT / "components"
# What the engine reads of a project (src/ is on the module path already: pytest's pythonpath).
PROJECT_PARTS = ("config.yml", "pyproject.toml", "aml", "components", "data", "docs", "online")
RUNS_STEPS = {"step_host", "completed_run"}


def load_script(component: str, script: str) -> ModuleType:
    """A step script imported in-process, finding the modules beside it as ``python <script>`` would, and the shared
    ones its spec's additional_includes copy beside it (components/common/, score's reader for monitor)."""
    spec_file = COMPONENTS_DIR / component / f"{component}.yml"
    includes = yaml.safe_load(spec_file.read_text()).get("additional_includes", []) if spec_file.is_file() else []
    shared = {str((spec_file.parent / include).resolve().parent) for include in includes}
    common = str(COMPONENTS_DIR / "common")
    folders = [str(COMPONENTS_DIR / component), common, *sorted(shared - {common})]
    spec = importlib.util.spec_from_file_location(f"step_{script}", COMPONENTS_DIR / component / f"{script}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path[:0] = folders
    try:
        spec.loader.exec_module(module)
    finally:
        for folder in folders:
            sys.path.remove(folder)
    return module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if RUNS_STEPS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


def copy_project(destination: Path, empty_store: Path | None = None) -> Project:
    """The parts of the project the engine reads, so runs and edits stay out of the working tree; with a ready MLflow
    store if given (a run would otherwise create its tables)."""
    destination.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        source = PROJECT_ROOT / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination / part)
    if empty_store is not None:
        shutil.copy2(empty_store, destination / "mlruns.db")
    return Project.load(destination)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow store with its tables created: creating them costs seconds per project copy."""
    import mlflow  # seconds to import: only for the tests that log to MLflow

    path = tmp_path_factory.mktemp("store") / "mlruns.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="session")
def project() -> Project:
    """The project as it stands, read only: a test that writes (a run, a check's cache, an edit) takes ``scratch``."""
    return Project.load(PROJECT_ROOT)


@pytest.fixture
def scratch(tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    """A scratch copy of the project; with a ready MLflow store for a test that runs steps, the only ones to use it
    (creating the store costs seconds, once per session)."""
    store = request.getfixturevalue("empty_store") if RUNS_STEPS & set(request.fixturenames) else None
    return copy_project(tmp_path / "project", store)


@pytest.fixture(scope="session")
def single_model(project: Project) -> dict[str, str]:
    """The parameter that gives the one-train-node graph, whatever model config.yml names."""
    model = project.setting("model", "type")
    return {"model_type": "ridge" if model == "auto" else model}


@pytest.fixture(scope="session")
def run_project(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Project:
    """The copy of the project that ``completed_run`` runs in; the step host opens its MLflow store while warming up
    (each run then names its own)."""
    return copy_project(tmp_path_factory.mktemp("run") / "project", empty_store)


@pytest.fixture(scope="session")
def step_host(run_project: Project) -> Iterator[StepHost]:
    """One warm step host for every local run of the session: warming up costs seconds per run."""
    host = start_step_host(run_project)
    yield host
    host.close()


@pytest.fixture(scope="session")
def completed_run(run_project: Project, step_host: StepHost) -> tuple[Project, RunResult]:
    """One full local run of the pipeline as config.yml sets it (`make run`), shared by the tests that read its
    outputs: its model is the one scored, served and monitored."""
    return run_project, run_pipeline_locally(run_project, {}, host=step_host)
