"""Each bake is a complete, valid project: exact files, parseable, lint-clean, loadable by azure-ai-ml, passing
`check`; and (marked slow) its own test suite passes offline: the fast tier for the configurations in
SUITE_CONFIGURATIONS, the end-to-end tier (local pipeline runs, scoring, serving) once, on the default render."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from azure_render import TrainedRender
from conftest import TEMPLATE_DIR, Bake, bake

LEFTOVER_TEMPLATE_SYNTAX = re.compile(r"\{\{-?\s*cookiecutter|\{%|%\}")
OFFLINE_ENV = {
    **os.environ,
    "PYTHONDONTWRITEBYTECODE": "1",
    "AZURE_SUBSCRIPTION_ID": "",
    "AZURE_RESOURCE_GROUP": "",
    "AZUREML_WORKSPACE_NAME": "",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow would post usage data and keep an id in ~/.config
}


def files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**OFFLINE_ENV, "PYTHONPATH": str(cwd / "src")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


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
        "components/score/score.yml",
        "components/select/select.yml",
        "components/select/select_model.py",
        f"data/{data_file}",
        "docs/sample-request.json",
        "docs/sample-request-mlflow.json",
        "online/conda.yml",
        "online/score.py",
        *(
            f"src/{package}/{module}.py"
            for module in (
                "__init__",
                "__main__",
                "azure_credentials",
                "azure_ml",
                "azure_monitoring",
                "cli",
                "local_runs",
                "pipeline",
                "settings",
                "sweeps",
                "tuning",
            )
        ),
        *(
            f"src/aml_pipeline_kit/{module}.py"
            for module in (
                "__init__",
                "aml_graph",
                *(
                    f"check/{rule}"
                    for rule in (
                        "__init__",
                        "aml_validation",
                        "binding",
                        "command",
                        "environment",
                        "report",
                        "script",
                        "values",
                    )
                ),
                "config_files",
                "data_refs",
                "job_file",
                "job_yaml",
                "local_limits",
                "local_runner",
                "plan",
                "plan_cache",
                "records",
                "reuse",
                "shell",
                "snapshot",
                "step_host",
                "step_imports",
                "step_io",
                "step_processes",
                "sweep",
                "tracking",
            )
        ),
        *(
            f"tests/{module}.py"
            for module in (
                "conftest",
                "test_aml_graph",
                "test_check",
                "test_cli",
                "test_data_prep_cases",
                "test_local_run",
                "test_lock",
                "test_monitoring",
                "test_readme",
                "test_regressors",
                "test_scoring",
                "test_serve",
                "test_settings",
                "test_specs",
                "test_steps",
                "test_submit",
                "test_tuning",
            )
        ),
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
    project = tomllib.loads((baked.path / "pyproject.toml").read_text())["project"]
    assert project["name"] == baked.path.name
    assert project["description"] == baked.value("description")
    assert project["authors"] == [{"name": baked.value("author_name")}]


def test_settings_carry_the_chosen_values(baked: Bake) -> None:
    config = yaml.safe_load((baked.path / "config.yml").read_text())
    assert config["target_column"] == baked.value("target_column")
    assert config["model"]["type"] == baked.value("model")
    assert config["test_size"] == float(baked.value("__test_size"))
    assert config["random_seed"] == int(baked.value("__random_seed"))
    assert config["azure"]["subscription_id"] == baked.value("__azure_subscription_id")
    compute = yaml.safe_load((baked.path / "aml/compute.yml").read_text())
    assert compute["name"] == baked.value("__compute_name")
    assert compute["tier"] == baked.value("__compute_tier")
    assert compute["min_instances"] == int(baked.value("__compute_min_instances"))
    assert compute["max_instances"] == int(baked.value("__compute_max_instances"))
    assert compute["idle_time_before_scale_down"] == int(baked.value("__compute_idle_seconds"))


def test_ruff_passes(baked: Bake) -> None:
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = run([sys.executable, "-m", "ruff", *command], baked.path)
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
    zizmor = run([str(tools / "zizmor"), "--offline", "--persona=pedantic", "--no-progress", str(github)], baked.path)
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    assert "No findings to report" in zizmor.stdout
    dependabot = [str(github / "dependabot.yml")]
    for schema, paths in (("vendor.github-workflows", workflows), ("vendor.dependabot", dependabot)):
        checked = run([str(tools / "check-jsonschema"), "--builtin-schema", schema, *paths], baked.path)
        assert checked.returncode == 0, checked.stdout + checked.stderr


AZURE_ML_PROBE = """
import io, json
from azure.ai.ml import load_compute, load_data, load_environment
from aml_pipeline_kit.aml_graph import serialised
from {package}.azure_monitoring import monitor_schedule
from {package}.pipeline import azure_monitor_pipeline, azure_pipeline, load_components, local_pipeline
from {package}.settings import Settings

settings = Settings.load()
local, azure, tuning = local_pipeline(settings), azure_pipeline(settings), azure_pipeline(settings, tune=True)
dumps = []
for job in (local, azure, tuning):
    buffer = io.StringIO()
    job.dump(buffer)
    dumps.append(buffer.getvalue())
components = load_components()
monitoring = azure_monitor_pipeline(settings)
schedule = monitor_schedule(settings, monitoring)
print(json.dumps({{
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
}}))
"""


@pytest.fixture(scope="module")
def azure_ml_view(baked: Bake) -> dict:
    """What azure-ai-ml makes of the bake: every spec loaded, the pipelines and the monitoring job with its schedule
    built, validated and serialised. One process per bake for the two tests below: azure-ai-ml takes seconds to
    import."""
    result = run([sys.executable, "-c", AZURE_ML_PROBE.format(package=baked.package)], baked.path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_azure_ml_loads_every_spec_and_the_pipeline_validates(baked: Bake, azure_ml_view: dict) -> None:
    loaded = azure_ml_view["specs"]
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
    # model=auto fans out one train node per candidate, selects, and refits the winner; any other model trains once
    trains = [name for name in jobs if name.startswith("train")]
    if baked.value("model") == "auto":
        assert sorted(trains) == ["train_hist_gradient_boosting", "train_random_forest", "train_ridge"]
        fed = {port["path"] for name, port in jobs["select"]["inputs"].items() if name.startswith("candidate_")}
        assert fed == {f"${{{{parent.jobs.{train}.outputs.model}}}}" for train in trains}
        assert jobs["refit"]["inputs"]["selection"]["path"] == "${{parent.jobs.select.outputs.selection}}"
        model_source = "refit"
    else:
        assert trains == ["train"]
        model_source = "train"
    for train in trains:
        assert jobs[train]["inputs"]["prepped_data"]["path"] == "${{parent.jobs.data_prep.outputs.prepped_data}}"
    assert jobs["evaluate"]["inputs"]["model"]["path"] == "${{parent.jobs." + model_source + ".outputs.model}}"
    assert jobs["evaluate"]["inputs"]["prepped_data"]["path"] == "${{parent.jobs.data_prep.outputs.prepped_data}}"
    assert jobs["register"]["inputs"]["report"]["path"] == "${{parent.jobs.evaluate.outputs.report}}"
    assert set(azure["outputs"]) == {"model", "report", "decision"} | (
        {"selection"} if model_source == "refit" else set()
    )
    # tuning: a sweep node per candidate (with a single model, that one), its best trial selected and refitted
    tuning = yaml.safe_load(loaded["tuning"])["jobs"]
    sweeps = {name: node for name, node in tuning.items() if node["type"] == "sweep"}
    tuned = (
        ["ridge", "random_forest", "hist_gradient_boosting"]
        if baked.value("model") == "auto"
        else [baked.value("model")]
    )
    assert sorted(sweeps) == sorted(f"tune_{name}" for name in tuned)
    assert all(node["objective"]["primary_metric"] == "validation_rmse" for node in sweeps.values())
    assert tuning["refit"]["inputs"]["selection"]["path"] == "${{parent.jobs.select.outputs.selection}}"


def test_the_monitoring_job_and_its_schedule_build_validate_and_serialise(baked: Bake, azure_ml_view: dict) -> None:
    """For every option combination: the monitoring job on Azure ML's inputs, and the body of its schedule."""
    loaded = azure_ml_view["monitoring"]
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


def test_the_project_check_passes(baked: Bake) -> None:
    result = run([sys.executable, "-m", baked.package, "check"], baked.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert CLEAN_CHECK.match(result.stdout.strip()), result.stdout


def run_rendered_tests(project: Path, markers: str) -> None:
    """The render's own tests selected by ``markers``, as its Makefile runs them: they must pass, and be some."""
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", markers], project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout)
    assert "failed" not in result.stdout.splitlines()[-1]


@pytest.mark.slow
def test_the_default_rendered_end_to_end_tests_pass_offline(tmp_path: Path) -> None:
    """Local runs, scoring and serving, once: the other renders run the same steps (tests/test_datasets.py runs
    each single model on data of its own through the CLI)."""
    run_rendered_tests(bake({}, tmp_path), "e2e")


@pytest.mark.slow
def test_the_rendered_fast_tests_pass_offline(baked_with_suite: Bake) -> None:
    run_rendered_tests(baked_with_suite.path, "not e2e")


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
def test_the_default_project_runs_locally_beats_the_baseline_then_reuses_its_steps(
    trained_render: TrainedRender,
) -> None:
    """The first run is the shared trained render's (conftest.py), made by the same command."""
    project = trained_render.root
    command = [sys.executable, "-m", trained_render.package, "run", "--local"]
    assert re.search(r"^RMSE\s+[\d.]+\s+[\d.]+$", trained_render.run_output, re.MULTILINE), trained_render.run_output
    metrics = trained_render.metrics
    assert metrics["rmse"] < metrics["baseline_rmse"]
    assert metrics["r2"] > 0.1 > metrics["baseline_r2"]
    second = run(command, project)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("reused outputs of run") == 7  # auto's eight steps but register
    fresh = run([*command, "--no-reuse"], project)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "reused" not in fresh.stdout


def test_the_readme_agrees_with_the_code(baked: Bake) -> None:
    """The render's own README checks (steps, modules, make targets, commands, run folders), in every configuration:
    the README is rendered per option, the code it describes too."""
    # Without the render's conftest.py: its imports (MLflow, the step host) cost seconds and serve the tests that run
    # steps; the README's tests take none of its fixtures (asked for one, they would fail, not pass).
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", "tests/test_readme.py"]
    result = run(command, baked.path)
    assert result.returncode == 0, result.stdout[-3000:]
