"""The plan cache of the rendered project's machinery: plans and check's verdict are used again only while
everything they were built from hashes the same, and a step script's edit is not among those things.

Each case builds the default bake's pipeline in this process, on a copy of the project of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from machinery import AZURE_AI_ML_SCHEMA_WARNINGS, ENV, MACHINERY, PACKAGE, copy_project, imported

pytestmark = AZURE_AI_ML_SCHEMA_WARNINGS

AZURE_AI_ML = "azure_ai_ml-{}.dist-info"
BROKEN_SCRIPT = "components/evaluate/evaluate.py"  # renaming its --report breaks the command's flags

# Edits that can change the plan or check's verdict: each must make the cache build anew.
INVALIDATING = {
    "a component's YAML spec": "components/train/train.yml",
    "a component defined in Python": "components/data_prep/component.py",
    "pipeline.py": f"src/{PACKAGE}/pipeline.py",
    "the settings module": f"src/{PACKAGE}/settings.py",
    "config.yml": "config.yml",
    "an AML spec": "aml/environment.yml",
    "the machinery's code": f"src/{MACHINERY}/aml_graph.py",
    "a rule of check": f"src/{MACHINERY}/check/binding.py",
}
# Step code, which the build never reads: editing it keeps the plan (check reads it anew every time).
KEEPING = {
    "a step script": "components/train/train.py",
    "another step script": "components/data_prep/prep.py",
    "a module beside a step script": "components/data_prep/csv_rules.py",
}


@pytest.fixture(scope="module")
def kit(default_project: Path) -> SimpleNamespace:
    """The default bake's machinery, pipeline and settings modules, imported in this process."""
    modules = {"plan_cache": MACHINERY, "check": MACHINERY, "plan": MACHINERY, "pipeline": PACKAGE, "settings": PACKAGE}
    return imported(default_project, modules)


class Project:
    """A copy of the default project, its plan cache (over the copy's own packages and a site folder of its own)
    and a count of the builds the cache asked for."""

    def __init__(self, kit: SimpleNamespace, root: Path, site: Path) -> None:
        self.kit, self.root, self.site = kit, root, site
        self.builds = 0
        self.cache = self.new_cache()

    def new_cache(self, root: Path | None = None) -> Any:
        root = root or self.root
        sources = [root / "src" / PACKAGE, root / "src" / MACHINERY]
        return self.kit.plan_cache.PlanCache(root, root / "runs" / ".plans", sources, site_dirs=[self.site])

    def settings(self) -> Any:
        return self.kit.settings.Settings.load(self.root)

    def build(self, overrides: dict[str, Any] | None = None) -> Any:
        self.builds += 1
        return self.kit.pipeline.local_pipeline(self.settings(), overrides)

    def check(self) -> Any:
        pipeline_file = self.root / "src" / PACKAGE / "pipeline.py"
        return self.kit.check.check_project(self.root, self.build, pipeline_file, self.cache)


@pytest.fixture
def project(kit: SimpleNamespace, default_project: Path, tmp_path: Path) -> Project:
    site = tmp_path / "site-packages"
    (site / AZURE_AI_ML.format("1.0.0")).mkdir(parents=True)
    return Project(kit, copy_project(default_project, tmp_path / "project"), site)


def edited(path: Path, old: str = "", new: str = "") -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}: update this test"
    path.write_text(text.replace(old, new, 1) if old else text + "\n# edited\n")


def plan_of(project: Project, overrides: dict[str, Any] | None = None) -> Any:
    kind = project.kit.plan_cache.training_plan(overrides or {})
    return project.cache.plan(kind, lambda: project.build(overrides))


@pytest.mark.parametrize("overrides", [{}, {"model_type": "auto"}], ids=["single model", "auto fan-out"])
def test_a_stored_plan_is_the_plan_built(project: Project, overrides: dict[str, Any]) -> None:
    built = plan_of(project, overrides)
    stored = project.new_cache().lookup(
        project.kit.plan_cache.training_plan(overrides), project.kit.plan.plan_from_data
    )
    assert stored == built
    assert plan_of(project, overrides) == built and project.builds == 1


@pytest.mark.parametrize("relative", INVALIDATING.values(), ids=INVALIDATING.keys())
def test_an_edit_that_can_change_the_plan_builds_it_again(project: Project, relative: str) -> None:
    plan_of(project)
    edited(project.root / relative)
    plan_of(project)
    assert project.builds == 2


@pytest.mark.parametrize("relative", KEEPING.values(), ids=KEEPING.keys())
def test_editing_step_code_keeps_the_plan(project: Project, relative: str) -> None:
    plan_of(project)
    edited(project.root / relative)
    os.utime(project.root / "components" / "train" / "train.yml")  # a time stamp counts for nothing either
    plan_of(project)
    assert project.builds == 1


def test_a_file_added_among_the_components_builds_it_again(project: Project) -> None:
    plan_of(project)
    (project.root / "components" / "train" / "notes.md").write_text("a new file\n")
    plan_of(project)
    assert project.builds == 2


def test_another_azure_ai_ml_builds_it_again(project: Project) -> None:
    plan_of(project)
    (project.site / AZURE_AI_ML.format("1.0.0")).rename(project.site / AZURE_AI_ML.format("1.1.0"))
    plan_of(project)
    assert project.builds == 2


def test_another_python_builds_it_again(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    plan_of(project)
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    plan_of(project)
    assert project.builds == 2


def test_other_parameters_are_another_plan(project: Project) -> None:
    plan_of(project)
    plan_of(project, {"alpha": 2.0})
    plan_of(project, {"alpha": 2.0})
    assert project.builds == 2


def test_a_moved_project_builds_it_again(project: Project, tmp_path: Path) -> None:
    """Plans hold the project's absolute paths: a copy with its runs/ must not run the original's code."""
    plan_of(project)
    moved = project.root.rename(tmp_path / "moved")
    project.root, project.cache = moved, project.new_cache(moved)
    assert str(moved) in str(plan_of(project).steps[0].code)
    assert project.builds == 2


def test_a_check_after_a_clean_one_reads_the_scripts_anew(project: Project) -> None:
    assert project.check().findings == [] and project.builds == 1
    edited(project.root / BROKEN_SCRIPT, '"--report"', '"--reports"')
    report = project.check()
    assert project.builds == 1  # azure-ai-ml's half was skipped, the scripts' rules were not
    assert any("--report is passed by the command" in finding.message for finding in report.findings)
    stored = project.new_cache().lookup(project.kit.plan_cache.training_plan({}), project.kit.plan.plan_from_data)
    assert stored is not None  # stored by the check


def test_a_check_with_findings_stores_nothing(project: Project) -> None:
    edited(project.root / BROKEN_SCRIPT, '"--report"', '"--reports"')
    assert project.check().findings
    assert not (project.root / "runs").exists()  # a refused run writes nothing, its cache neither
    edited(project.root / BROKEN_SCRIPT, '"--reports"', '"--report"')
    assert project.check().findings == [] and project.builds == 2


def test_a_spec_broken_after_a_clean_check_is_found(project: Project) -> None:
    project.check()
    edited(project.root / "config.yml", "alpha: 1.0", "alpha: -1.0")
    report = project.check()
    assert project.builds == 2
    assert any("alpha: -1.0 is below the minimum 0" in finding.message for finding in report.findings)


def test_a_second_check_imports_no_azure_ai_ml(default_project: Path, tmp_path: Path) -> None:
    project = copy_project(default_project, tmp_path / "project")
    probe = (
        "import sys\n"
        f"from {PACKAGE}.cli import main\n"
        "status = main(['check'])\n"
        "print(status, 'azure.ai.ml' in sys.modules)\n"
    )

    def check() -> str:
        command: list[str] = [sys.executable, "-c", probe]
        env = {**ENV, "PYTHONPATH": str(project / "src")}
        result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()[-1]

    assert check() == "0 True"
    assert check() == "0 False"


def test_a_trace_that_missed_a_read_stores_nothing(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(path: Path) -> str | None:
        raise PermissionError(path)

    with project.cache.tracing() as reads:
        monkeypatch.setattr(project.kit.plan_cache, "file_digest", unreadable)
        (project.root / "components" / "train" / "train.yml").read_text()
    monkeypatch.undo()
    assert reads == {}
