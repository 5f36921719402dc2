"""README.md's and docs/'s facts that come from the code, checked against it: the steps and their component folders,
the project's modules, the files named, the make targets, the engine's commands and options, the run folders. An
edit to either side without the other fails here."""

import re

from conftest import PROJECT_ROOT

from aml_pipeline_kit.aml_graph import plan_from_job
from aml_pipeline_kit.cli import build_parser
from aml_pipeline_kit.local_runs import local_job
from aml_pipeline_kit.project import Project

from diabetes_blood_pressure.parameters import regressors

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {path.name: path.read_text(encoding="utf-8") for path in sorted((PROJECT_ROOT / "docs").glob("*.md"))}
EVERY_PAGE = "\n".join([README, *DOCS.values()])
DIAGRAM = README.split("```\n", 2)[1]  # the first fenced block: the pipeline's steps
DIAGRAM_STEP = re.compile(r"^(\w+(?:_<model type>)?)\s+components/(\w+)/", re.MULTILINE)
# A path in the project, in backticks: under one of its folders, without placeholders or wildcards.
PROJECT_PATH = re.compile(r"`((?:aml|components|data|docs|online|src|tests)/[\w./-]*)`")
ENGINE_COMMAND = re.compile(r"(?:aml-pipeline-kit|\$\(KIT\)) ([a-z][\w-]*)(.*)")


def test_the_diagram_names_every_step_and_its_component_folder(project: Project) -> None:
    plan = plan_from_job(local_job(project, "training"))
    drawn = dict(DIAGRAM_STEP.findall(DIAGRAM))
    declared = regressors(project).REGRESSORS
    built = {}
    for step in plan.steps:
        candidate = step.name.removeprefix("train_") in declared  # auto: train_<model type>
        built["train_<model type>" if candidate else step.name] = step.code.name
    assert drawn == built


def test_every_module_of_the_package_is_named() -> None:
    (package,) = [path for path in (PROJECT_ROOT / "src").iterdir() if (path / "__init__.py").is_file()]
    for module in package.glob("*.py"):
        if module.stem != "__init__":
            assert f"`src/{package.name}/{module.name}`" in README, f"README.md does not name {module.name}"


def test_the_pages_link_each_other_and_every_file_they_name_exists() -> None:
    for link in re.findall(r"\]\((docs/[\w.-]+\.md)\)", README):
        assert (PROJECT_ROOT / link).is_file(), f"README.md links to {link}, which is not there"
    assert {f"docs/{name}" for name in DOCS} <= set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", README))
    for name, text in {"README.md": README, **DOCS}.items():
        for path in PROJECT_PATH.findall(text):
            assert (PROJECT_ROOT / path).exists(), f"{name} names {path}, which is not there"


def test_every_make_target_with_a_description_is_shown() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^([\w-]+):.*##", makefile, re.MULTILINE):
        assert f"make {target}" in EVERY_PAGE, f"neither README.md nor docs/ show `make {target}`"


def test_every_command_shown_is_the_engines_with_its_options() -> None:
    """The commands and options README.md, docs/ and the Makefile give the engine, aml-pipeline-kit, are its own."""
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    commands = next(action for action in build_parser()._actions if action.dest == "command").choices
    shown = [match for text in (EVERY_PAGE, makefile) for match in ENGINE_COMMAND.findall(text)]
    assert {command for command, _ in shown} >= {"check", "run", "tune", "submit", "score", "monitor"}
    for command, rest in shown:
        assert command in commands, f"aml-pipeline-kit has no command {command!r}"
        options = set(commands[command]._option_string_actions)
        unknown = set(re.findall(r"(?<![\w-])--?[a-z][\w-]*", rest.split("#")[0].split("`")[0])) - options
        assert not unknown, f"aml-pipeline-kit {command} takes no {', '.join(sorted(unknown))}"


def test_the_run_folders_shown_are_outputs_the_pipelines_write(project: Project) -> None:
    model, rows = project.root / "components", project.local_data_path  # any folder and CSV that exist
    jobs = [
        local_job(project, "training"),
        *(local_job(project, role, model=model, data=rows) for role in ("scoring", "monitoring")),
    ]
    writes = {f"{step.name}/{output}" for job in jobs for step in plan_from_job(job).steps for output in step.outputs}
    for shown in set(re.findall(r"runs/<run id>/(\w+/\w+)(?![\w.])", EVERY_PAGE)):  # not a step's file (step.log)
        assert shown in writes, f"the pages show runs/<run id>/{shown}, which this project's pipelines never write"
