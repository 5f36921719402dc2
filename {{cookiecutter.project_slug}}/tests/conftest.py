"""Shared fixtures: a scratch copy of the project, its settings, and one completed local run."""

import shutil
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import run_pipeline_locally
from {{ cookiecutter.package_name }}.local_runner import RunResult
from {{ cookiecutter.package_name }}.settings import PROJECT_ROOT, Settings

PROJECT_PARTS = ("config.yml", "aml", "components", "data")


def copy_project(destination: Path) -> Path:
    """The parts of the project a run reads, so runs and edits stay out of the working tree."""
    destination.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        source = PROJECT_ROOT / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination / part)
    return destination


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.load()


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    return Settings.load(copy_project(tmp_path / "project"))


@pytest.fixture(scope="session")
def completed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, RunResult]:
    """One full local run of the default pipeline, shared by the tests that read its outputs."""
    settings = Settings.load(copy_project(tmp_path_factory.mktemp("run") / "project"))
    return settings, run_pipeline_locally(settings, {})
