"""Each bake is a complete, valid project: exact files, parseable, lint-clean, loadable by azure-ai-ml, passing
`check`, its README true to its code; and (marked slow) the default render's own test suite passes offline, its local
runs, scoring and serving included. The other configurations differ from it in names, CI files and the model, which
the checks here cover for each (tests/test_datasets.py runs each single model on data of its own)."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from azure_render import TrainedRender
from conftest import TEMPLATE_DIR, Bake, run_in

LEFTOVER_TEMPLATE_SYNTAX = re.compile(r"\{\{-?\s*cookiecutter|\{%|%\}")
RENDER_TESTS = (
    "conftest",
    "test_aml_graph",
    "test_batch_scoring",
    "test_check",
    "test_config",
    "test_data_prep_cases",
    "test_local_run",
    "test_lock",
    "test_makefile",
    "test_monitoring",
    "test_readme",
    "test_regressors",
    "test_scoring",
    "test_serve",
    "test_specs",
    "test_steps",
    "test_submit",
    "test_tuning",
)


def files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def test_exact_file_set(baked: Bake) -> None:
    package = baked.package
    data_file = Path(baked.value("data_path")).name
    ci_files = {
        "github": {".github/dependabot.yml", ".github/workflows/ci.yml", ".github/workflows/submit.yml"},
        "azure-devops": {"azure-pipelines.yml"},
        "none": set(),
    }[baked.value("ci")]
    assert files(baked.path) == {
        ".gitignore",
        ".pre-commit-config.yaml",
        *ci_files,
        "Makefile",
        "README.md",
        "config.yml",
        "pyproject.toml",
        "requirements.lock",
        "aml/compute.yml",
        "aml/conda.yml",
        "aml/data.yml",
        "aml/deployment.yml",
        "aml/endpoint.yml",
        "aml/environment.yml",
        "aml/monitor-schedule.yml",
        "components/common/argument_types.py",
        "components/data_prep/component.py",
        "components/data_prep/csv_rules.py",
        "components/data_prep/prep.py",
        "components/evaluate/evaluate.py",
        "components/evaluate/evaluate.yml",
        "components/train/regressors.py",
        "components/train/train.py",
        "components/train/training.py",
        "components/train/train.yml",
        "components/monitor/drift.py",
        "components/monitor/monitor.py",
        "components/monitor/monitor.yml",
        "components/register/register.py",
        "components/register/register.yml",
        "components/score/score.py",
        "components/score/component.py",
        "components/select/select.yml",
        "components/select/select_model.py",
        f"data/{data_file}",
        "online/conda.yml",
        "online/score.py",
        *(f"docs/{page}.md" for page in ("azure-ml", "batch-scoring", "local-runs", "maintenance", "model")),
        *(f"src/{package}/{module}.py" for module in ("__init__", "parameters", "pipeline")),
        *(f"tests/{module}.py" for module in RENDER_TESTS),
    }


def test_no_template_syntax_is_left(baked: Bake) -> None:
    for path in baked.path.rglob("*"):
        if path.is_file() and path.suffix != ".csv":
            text = path.read_text(encoding="utf-8")
            assert not LEFTOVER_TEMPLATE_SYNTAX.search(text), f"{path} holds template syntax"


def test_azure_ml_placeholders_survive(baked: Bake) -> None:
    train = (baked.path / "components/train/train.yml").read_text()
    assert "--prepped-data '${{inputs.prepped_data}}'" in train
    assert "$[[--max-depth ${{inputs.max_depth}}]]" in train
    assert "--model ${{outputs.model}}" in train
    assert "--report ${{outputs.report}}" in (baked.path / "components/evaluate/evaluate.yml").read_text()
    prep = (baked.path / "components/data_prep/component.py").read_text()
    assert "\" --input-data '${{inputs.input_data}}'\"" in prep
    assert '" --prepped-data ${{outputs.prepped_data}}"' in prep


def test_every_file_parses(baked: Bake) -> None:
    for path in baked.path.rglob("*"):
        if path.suffix in {".yml", ".yaml"}:
            assert yaml.safe_load(path.read_text()) is not None, path
        elif path.suffix == ".py":
            ast.parse(path.read_text(), filename=str(path))
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["name"] == baked.path.name
    assert project["description"] == baked.value("description")
    assert project["authors"] == [{"name": baked.value("author_name")}]
    # How the engine finds the project's pipelines, and where `make install` takes the engine from.
    assert pyproject["tool"]["aml-pipeline-kit"] == {"pipelines": f"{baked.package}.pipeline"}
    assert set(pyproject["tool"]["uv"]["sources"]) == {"aml-pipeline-kit"}


def test_settings_carry_the_chosen_values(baked: Bake) -> None:
    config = yaml.safe_load((baked.path / "config.yml").read_text())
    assert config["target_column"] == baked.value("target_column")
    assert config["model"]["type"] == baked.value("model")
    assert config["test_size"] == float(baked.value("__test_size"))
    assert config["random_seed"] == int(baked.value("__random_seed"))
    assert config["cv_folds"] == int(baked.value("__cv_folds"))
    assert config["azure"]["subscription_id"] == baked.value("__azure_subscription_id")
    compute = yaml.safe_load((baked.path / "aml/compute.yml").read_text())
    assert compute["name"] == baked.value("__compute_name")
    assert compute["tier"] == baked.value("__compute_tier")
    assert compute["min_instances"] == int(baked.value("__compute_min_instances"))
    assert compute["max_instances"] == int(baked.value("__compute_max_instances"))
    assert compute["idle_time_before_scale_down"] == int(baked.value("__compute_idle_seconds"))


def test_ruff_passes(baked: Bake) -> None:
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = run_in(baked.path, [sys.executable, "-m", "ruff", *command])
        assert result.returncode == 0, result.stdout + result.stderr


def test_github_files_pass_zizmor_and_githubs_schemas(baked: Bake) -> None:
    """zizmor's strictest persona (pinned SHAs, no persisted credentials, least privilege, ...) finds nothing, offline,
    and the workflows and dependabot.yml validate against the schemas check-jsonschema ships (SchemaStore's)."""
    github = baked.path / ".github"
    if baked.value("ci") != "github":
        assert not github.exists()
        return
    workflows = sorted(str(path) for path in (github / "workflows").glob("*.yml"))
    assert workflows
    tools = Path(sys.executable).parent
    zizmor = run_in(baked.path, [str(tools / "zizmor"), "--offline", "--persona=pedantic", "--no-progress", ".github"])
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    assert "No findings to report" in zizmor.stdout
    dependabot = [str(github / "dependabot.yml")]
    for schema, paths in (("vendor.github-workflows", workflows), ("vendor.dependabot", dependabot)):
        checked = run_in(baked.path, [str(tools / "check-jsonschema"), "--builtin-schema", schema, *paths])
        assert checked.returncode == 0, checked.stdout + checked.stderr


RENDER_PROBE = """
import contextlib, dataclasses, io, json, sys
import pytest
from azure.ai.ml import load_compute, load_data, load_environment
from aml_pipeline_kit.aml_graph import serialised
from aml_pipeline_kit.azure_ml import training_job
from aml_pipeline_kit.azure_monitoring import monitor_schedule, monitoring_job
from aml_pipeline_kit.local_runs import check_report, local_job
from aml_pipeline_kit.project import Project
from {package}.pipeline import load_components

view_file, runs_dir = sys.argv[1:]
with contextlib.redirect_stdout(io.StringIO()) as report:
    readme = int(pytest.main(["-q", "-p", "no:cacheprovider", "tests/test_readme.py"]))
project = Project.load()
# check keeps its verdict under the runs folder: a scratch one, so that the bake stays as rendered
local_settings = {{**project.config["local"], "runs_dir": runs_dir}}
check = check_report(dataclasses.replace(project, config={{**project.config, "local": local_settings}}))
local, azure, tuning = local_job(project, "training"), training_job(project), training_job(project, tune=True)
dumps = []
for job in (local, azure, tuning):
    buffer = io.StringIO()
    job.dump(buffer)
    dumps.append(buffer.getvalue())
components = load_components(project, "data_prep", "train", "select", "evaluate", "register", "monitor")
monitoring = monitoring_job(project, project.setting("monitoring", "batch_path"))
schedule = monitor_schedule(project, monitoring)
view = {{
    "specs": {{
        "valid": [local._validate().passed, azure._validate().passed, tuning._validate().passed],
        "local": dumps[0],
        "azure": dumps[1],
        "tuning": dumps[2],
        "compute": load_compute("aml/compute.yml")._to_dict(),
        "environment": load_environment("aml/environment.yml")._to_dict(),
        "data": load_data("aml/data.yml")._to_dict(),
        "components": {{name: component._to_dict() for name, component in components.items()}},
    }},
    "monitoring": {{
        "valid": monitoring._validate().passed,
        "job": serialised(monitoring),
        "schedule": schedule._to_rest_object().as_dict(),
        "schedule_name": schedule.name,
    }},
    "check": {{"findings": check.text() if check.findings else "", "summary": check.summary()}},
    "readme_tests": {{"exit_code": readme, "report": report.getvalue()}},
}}
with open(view_file, "w") as out:
    json.dump(view, out)
"""


@pytest.fixture(scope="module")
def render_view(baked: Bake, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The bake as azure-ai-ml and the engine make it: every spec loaded, the pipelines and the monitoring job with
    its schedule built, validated and serialised, `make check`'s report; and the render's README tests run. One
    process per bake for the four tests below: azure-ai-ml takes seconds to import."""
    scratch = tmp_path_factory.mktemp("view")
    probe = [sys.executable, "-c", RENDER_PROBE.format(package=baked.package), str(scratch / "view.json")]
    result = run_in(baked.path, [*probe, str(scratch / "runs")])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((scratch / "view.json").read_text())


def test_azure_ml_loads_every_spec_and_the_pipeline_validates(baked: Bake, render_view: dict) -> None:
    loaded = render_view["specs"]
    assert loaded["valid"] == [True, True, True]
    assert loaded["compute"]["name"] == baked.value("__compute_name")
    assert loaded["compute"]["tier"] == baked.value("__compute_tier")
    assert loaded["environment"]["name"] == baked.value("__environment_name")
    assert loaded["data"]["name"] == baked.value("__data_asset_name")
    components = loaded["components"]
    assert components["train"]["inputs"]["model_type"]["default"] == baked.value("__single_model")
    assert baked.value("__single_model") == baked.value("model").replace("auto", "ridge")
    assert components["data_prep"]["inputs"]["input_data"]["type"] == "uri_file"
    assert components["data_prep"]["outputs"]["prepped_data"]["type"] == "uri_folder"
    azure = yaml.safe_load(loaded["azure"])
    assert azure["settings"]["default_compute"] == f"azureml:{baked.value('__compute_name')}"
    assert azure["inputs"]["input_data"]["path"] == f"azureml:{baked.value('__data_asset_name')}:1"
    jobs = azure["jobs"]
    # model=auto fans out one cross-validated train node per candidate and selects the winner's model; any other model
    # trains once
    trains = [name for name in jobs if name.startswith("train")]
    if baked.value("model") == "auto":
        assert sorted(trains) == ["train_hist_gradient_boosting", "train_random_forest", "train_ridge"]
        fed = {port["path"] for name, port in jobs["select"]["inputs"].items() if name.startswith("candidate_")}
        assert fed == {f"${{{{parent.jobs.{train}.outputs.model}}}}" for train in trains}
        assert all(jobs[train]["inputs"]["cv_folds"]["path"] == "${{parent.inputs.cv_folds}}" for train in trains)
        model_source = "select"
    else:
        assert trains == ["train"]
        model_source = "train"
    for train in trains:
        assert jobs[train]["inputs"]["prepped_data"]["path"] == "${{parent.jobs.data_prep.outputs.prepped_data}}"
    assert jobs["evaluate"]["inputs"]["model"]["path"] == "${{parent.jobs." + model_source + ".outputs.model}}"
    assert jobs["evaluate"]["inputs"]["prepped_data"]["path"] == "${{parent.jobs.data_prep.outputs.prepped_data}}"
    assert jobs["register"]["inputs"]["report"]["path"] == "${{parent.jobs.evaluate.outputs.report}}"
    assert set(azure["outputs"]) == {"model", "report", "decision"} | (
        {"selection"} if model_source == "select" else set()
    )
    # tuning: a sweep node per candidate (with a single model, that one), its trials cross-validated, the best selected
    tuning = yaml.safe_load(loaded["tuning"])["jobs"]
    sweeps = {name: node for name, node in tuning.items() if node["type"] == "sweep"}
    tuned = (
        ["ridge", "random_forest", "hist_gradient_boosting"]
        if baked.value("model") == "auto"
        else [baked.value("model")]
    )
    assert sorted(sweeps) == sorted(f"tune_{name}" for name in tuned)
    assert all(node["objective"]["primary_metric"] == "cv_rmse" for node in sweeps.values())
    assert tuning["evaluate"]["inputs"]["model"]["path"] == "${{parent.jobs.select.outputs.model}}"


def test_the_monitoring_job_and_its_schedule_build_validate_and_serialise(baked: Bake, render_view: dict) -> None:
    """For every option combination: the monitoring job on Azure ML's inputs, and the body of its schedule."""
    loaded = render_view["monitoring"]
    assert loaded["valid"]
    inputs = loaded["job"]["inputs"]
    assert inputs["model"]["path"] == f"azureml:{baked.value('__registered_model_name')}@latest"
    assert inputs["training_data"]["path"] == f"azureml:{baked.value('__data_asset_name')}:1"
    assert inputs["batch"]["path"].endswith(f"/{baked.value('project_slug')}/monitoring/batch.csv")
    assert set(loaded["job"]["jobs"]) == {"data_prep", "evaluate", "score", "monitor"}
    assert loaded["job"]["settings"]["default_compute"] == f"azureml:{baked.value('__compute_name')}"
    assert loaded["job"]["settings"]["force_rerun"] is True
    assert loaded["schedule_name"] == f"{baked.value('project_slug')}-monitor"
    properties = loaded["schedule"]["properties"]
    assert properties["trigger"] == {
        "triggerType": "Recurrence",
        "frequency": "day",
        "interval": 1,
        "schedule": {"hours": [6], "minutes": [0]},
        "timeZone": "UTC",
    }
    assert properties["action"]["actionType"] == "CreateJob"
    assert properties["action"]["jobDefinition"]["jobType"] == "Pipeline"


CLEAN_CHECK = re.compile(r"^check: \d+ components, \d+ bindings, \d+ scripts, \d+ packages — no findings$")


def test_the_project_check_passes(render_view: dict) -> None:
    check = render_view["check"]
    assert check["findings"] == ""
    assert CLEAN_CHECK.match(check["summary"]), check["summary"]


@pytest.mark.slow
def test_the_rendered_tests_pass_offline(bakes: Callable[[str], Bake]) -> None:
    """The default render's own tests, as its `make test` and `make test-e2e` run them (with this venv, which holds
    its lock's versions), in one process: they must pass, and be some."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = run_in(bakes("default").path, command)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout)
    assert "failed" not in result.stdout.splitlines()[-1]


def locked_pins(lock: Path) -> dict[tuple[str, str], str]:
    """A lock's ``name==version ; marker`` lines as {(name, marker): version}."""
    entries = {}
    for line in lock.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement, _, marker = line.partition(";")
            name, _, version = requirement.partition("==")
            entries[(name.strip(), marker.strip())] = version.strip()
    return entries


def test_template_venv_pins_match_the_rendered_project(baked: Bake) -> None:
    """The template's venv holds every version the render's lock pins, so renders are tested as they install."""
    rendered = locked_pins(baked.path / "requirements.lock")
    template = locked_pins(TEMPLATE_DIR / "requirements-dev.lock")
    assert {entry: template.get(entry) for entry in rendered} == rendered
    dependencies = tomllib.loads((baked.path / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "azure-ai-ml>=1.35,<1.36" in dependencies
    assert rendered[("azure-ai-ml", "")].startswith("1.35.")


@pytest.mark.slow
def test_the_default_project_runs_locally_and_beats_the_baseline(trained_render: TrainedRender) -> None:
    """The shared trained render's run (conftest.py): `make run`'s command, its metrics table, its model."""
    assert re.search(r"^RMSE\s+[\d.]+\s+[\d.]+$", trained_render.run_output, re.MULTILINE), trained_render.run_output
    metrics = trained_render.metrics
    assert metrics["rmse"] < metrics["baseline_rmse"]
    assert metrics["r2"] > 0.1 > metrics["baseline_r2"]


def test_the_readme_agrees_with_the_code(render_view: dict) -> None:
    """The render's own README checks (steps, modules, files, make targets, commands, run folders), in every
    configuration: the README and docs/ are rendered per option, the code they describe too."""
    readme_tests = render_view["readme_tests"]
    assert readme_tests["exit_code"] == 0, readme_tests["report"][-3000:]
