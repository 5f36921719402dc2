"""README.md's facts that come from the code, checked against it: the steps and their component folders, the
modules of both packages, the make targets and the commands. An edit to either side without the other fails here."""

import re

from aml_pipeline_kit.aml_graph import plan_from_job

from diabetes_blood_pressure.cli import build_parser
from diabetes_blood_pressure.pipeline import (
    local_monitor_pipeline,
    local_pipeline,
    local_score_pipeline,
)
from diabetes_blood_pressure.settings import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
DIAGRAM = README.split("```\n", 2)[1]  # the first fenced block: the pipeline's steps
DIAGRAM_STEP = re.compile(r"^(\w+(?:_<model type>)?)\s+components/(\w+)/", re.MULTILINE)


def test_the_diagram_names_every_step_and_its_component_folder() -> None:
    settings = Settings.load()
    plan = plan_from_job(local_pipeline(settings))
    drawn = dict(DIAGRAM_STEP.findall(DIAGRAM))
    built = {}
    for step in plan.steps:
        candidate = step.name.removeprefix("train_") in settings.regressors.REGRESSORS  # auto: train_<model type>
        built["train_<model type>" if candidate else step.name] = step.code.name
    assert drawn == built


def test_every_module_of_both_packages_is_named() -> None:
    for package in (PROJECT_ROOT / "src").iterdir():
        for module in package.glob("*.py"):
            if module.stem not in {"__init__", "__main__"}:
                assert f"`{module.name}`" in README, f"README.md does not name src/{package.name}/{module.name}"
        for subpackage in (path for path in package.iterdir() if (path / "__init__.py").is_file()):
            assert f"`{subpackage.name}/`" in README, f"README.md does not name src/{package.name}/{subpackage.name}/"


def test_every_make_target_with_a_description_is_shown() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^([\w-]+):.*##", makefile, re.MULTILINE):
        assert f"make {target}" in README, f"README.md does not show `make {target}`"


def test_every_command_is_shown() -> None:
    commands = next(action for action in build_parser()._actions if action.dest == "command").choices
    for command in commands:
        assert re.search(rf"(?<![\w-]){command}(?![\w-])", README), f"README.md does not show the {command} command"


def test_the_run_folders_shown_are_outputs_the_pipelines_write() -> None:
    settings = Settings.load()
    model, rows = settings.root / "components", settings.local_data_path  # any folder and CSV that exist
    jobs = (
        local_pipeline(settings),
        local_score_pipeline(settings, model, rows),
        local_monitor_pipeline(settings, model, rows),
    )
    writes = {f"{step.name}/{output}" for job in jobs for step in plan_from_job(job).steps for output in step.outputs}
    for shown in set(re.findall(r"runs/<run id>/(\w+/\w+)", README)):
        assert shown in writes, f"README.md shows runs/<run id>/{shown}, which this pipeline never writes"
