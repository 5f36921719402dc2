"""The plan cache: plans and check's verdict are used again only while everything they were built from hashes the
same, and a step script's edit is not among those things.

Each case builds the example's training pipeline in this process, on a copy of the project of its own, with a copy of
the engine's package standing for the engine's code (the cache hashes the engine's own code too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from projects import ENV, PACKAGE, copy_example, load_project

from aml_pipeline_kit import check, plan, plan_cache
from aml_pipeline_kit.local_runs import local_job

AZURE_AI_ML = "azure_ai_ml-{}.dist-info"
ENGINE = "engine"  # beside the project: the copy of the engine's package that the cache hashes as the engine's code
BROKEN_SCRIPT = "components/evaluate/evaluate.py"  # renaming its --report breaks the command's flags

# Edits that can change the plan or check's verdict: each must make the cache build anew.
INVALIDATING = {
    "a component's YAML spec": "components/train/train.yml",
    "a component defined in Python": "components/data_prep/component.py",
    "pipeline.py": f"src/{PACKAGE}/pipeline.py",
    "the parameters module": f"src/{PACKAGE}/parameters.py",
    "config.yml": "config.yml",
    "an AML spec": "aml/environment.yml",
    "the engine's code": f"../{ENGINE}/aml_graph.py",
    "a rule of check": f"../{ENGINE}/check/binding.py",
}
# Step code, which the build never reads: editing it keeps the plan (check reads it anew every time).
KEEPING = {
    "a step script": "components/train/train.py",
    "another step script": "components/data_prep/prep.py",
    "a module beside a step script": "components/data_prep/csv_rules.py",
}


class CachedProject:
    """A copy of the example, its plan cache (over the copy's own package and a site folder of its own) and a count
    of the builds the cache asked for."""

    def __init__(self, root: Path, site: Path) -> None:
        self.root, self.site = root, site
        self.builds = 0
        self.cache = self.new_cache()

    def new_cache(self, root: Path | None = None) -> Any:
        root = root or self.root
        return plan_cache.PlanCache(root, root / "runs" / ".plans", [root / "src" / PACKAGE], site_dirs=[self.site])

    def build(self, overrides: dict[str, Any] | None = None) -> Any:
        self.builds += 1
        return local_job(load_project(self.root), "training", overrides)

    def check(self) -> Any:
        pipeline_file = self.root / "src" / PACKAGE / "pipeline.py"
        return check.check_project(self.root, self.build, pipeline_file, self.cache)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CachedProject:
    site = tmp_path / "site-packages"
    (site / AZURE_AI_ML.format("1.0.0")).mkdir(parents=True)
    engine = shutil.copytree(plan_cache.ENGINE_DIR, tmp_path / ENGINE, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(plan_cache, "ENGINE_DIR", engine)
    return CachedProject(copy_example(tmp_path / "project"), site)


def edited(path: Path, old: str = "", new: str = "") -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}: update this test"
    path.write_text(text.replace(old, new, 1) if old else text + "\n# edited\n")


def plan_of(project: CachedProject, overrides: dict[str, Any] | None = None) -> Any:
    kind = plan_cache.training_plan(overrides or {})
    return project.cache.plan(kind, lambda: project.build(overrides))


@pytest.mark.parametrize("overrides", [{}, {"model_type": "auto"}], ids=["single model", "auto fan-out"])
def test_a_stored_plan_is_the_plan_built(project: CachedProject, overrides: dict[str, Any]) -> None:
    built = plan_of(project, overrides)
    stored = project.new_cache().lookup(plan_cache.training_plan(overrides), plan.plan_from_data)
    assert stored == built
    assert plan_of(project, overrides) == built and project.builds == 1


@pytest.mark.parametrize("relative", INVALIDATING.values(), ids=INVALIDATING.keys())
def test_an_edit_that_can_change_the_plan_builds_it_again(project: CachedProject, relative: str) -> None:
    plan_of(project)
    edited(project.root / relative)
    plan_of(project)
    assert project.builds == 2


@pytest.mark.parametrize("relative", KEEPING.values(), ids=KEEPING.keys())
def test_editing_step_code_keeps_the_plan(project: CachedProject, relative: str) -> None:
    plan_of(project)
    edited(project.root / relative)
    os.utime(project.root / "components" / "train" / "train.yml")  # a time stamp counts for nothing either
    plan_of(project)
    assert project.builds == 1


def test_a_file_added_among_the_components_builds_it_again(project: CachedProject) -> None:
    plan_of(project)
    (project.root / "components" / "train" / "notes.md").write_text("a new file\n")
    plan_of(project)
    assert project.builds == 2


def test_another_azure_ai_ml_builds_it_again(project: CachedProject) -> None:
    plan_of(project)
    (project.site / AZURE_AI_ML.format("1.0.0")).rename(project.site / AZURE_AI_ML.format("1.1.0"))
    plan_of(project)
    assert project.builds == 2


def test_another_python_builds_it_again(project: CachedProject, monkeypatch: pytest.MonkeyPatch) -> None:
    plan_of(project)
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    plan_of(project)
    assert project.builds == 2


def test_other_parameters_are_another_plan(project: CachedProject) -> None:
    plan_of(project)
    plan_of(project, {"alpha": 2.0})
    plan_of(project, {"alpha": 2.0})
    assert project.builds == 2


def test_a_moved_project_builds_it_again(project: CachedProject, tmp_path: Path) -> None:
    """Plans hold the project's absolute paths: a copy with its runs/ must not run the original's code."""
    plan_of(project)
    moved = project.root.rename(tmp_path / "moved")
    project.root, project.cache = moved, project.new_cache(moved)
    assert str(moved) in str(plan_of(project).steps[0].code)
    assert project.builds == 2


def test_a_check_after_a_clean_one_reads_the_scripts_anew(project: CachedProject) -> None:
    assert project.check().findings == [] and project.builds == 1
    edited(project.root / BROKEN_SCRIPT, '"--report"', '"--reports"')
    report = project.check()
    assert project.builds == 1  # azure-ai-ml's half was skipped, the scripts' rules were not
    assert any("--report is passed by the command" in finding.message for finding in report.findings)
    stored = project.new_cache().lookup(plan_cache.training_plan({}), plan.plan_from_data)
    assert stored is not None  # stored by the check


def test_a_check_with_findings_stores_nothing(project: CachedProject) -> None:
    edited(project.root / BROKEN_SCRIPT, '"--report"', '"--reports"')
    assert project.check().findings
    assert not (project.root / "runs").exists()  # a refused run writes nothing, its cache neither
    edited(project.root / BROKEN_SCRIPT, '"--reports"', '"--report"')
    assert project.check().findings == [] and project.builds == 2


def test_a_spec_broken_after_a_clean_check_is_found(project: CachedProject) -> None:
    project.check()
    edited(project.root / "config.yml", "alpha: 1.0", "alpha: -1.0")
    report = project.check()
    assert project.builds == 2
    assert any("alpha: -1.0 is below the minimum 0" in finding.message for finding in report.findings)


def test_a_second_check_imports_no_azure_ai_ml(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "project")
    probe = (
        "import sys\n"
        "from aml_pipeline_kit.cli import main\n"
        "status = main(['check'])\n"
        "print(status, 'azure.ai.ml' in sys.modules)\n"
    )

    def check() -> str:
        command: list[str] = [sys.executable, "-c", probe]
        result = subprocess.run(command, cwd=project, env=ENV, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()[-1]

    assert check() == "0 True"
    assert check() == "0 False"


def test_a_trace_that_missed_a_read_stores_nothing(project: CachedProject, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(path: Path) -> str | None:
        raise PermissionError(path)

    with project.cache.tracing() as reads:
        monkeypatch.setattr(plan_cache, "file_digest", unreadable)
        (project.root / "components" / "train" / "train.yml").read_text()
    monkeypatch.undo()
    assert reads == {}
