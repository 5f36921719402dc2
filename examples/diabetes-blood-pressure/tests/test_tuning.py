"""Tuning: the sweep nodes as azure-ai-ml builds, validates and serialises them (offline), config.yml's tuning settings,
the tuned model written back into config.yml, and a local tuning run that beats the default hyperparameters."""

import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from azure.ai.ml import load_job

from aml_pipeline_kit.aml_graph import serialised
from aml_pipeline_kit.step_host import StepHost

from diabetes_blood_pressure import azure_ml
from diabetes_blood_pressure.cli import main
from diabetes_blood_pressure.local_runs import run_pipeline_locally
from diabetes_blood_pressure.pipeline import azure_pipeline, checked_graphs, local_pipeline
from diabetes_blood_pressure.settings import Settings, SettingsError
from diabetes_blood_pressure.tuning import tuning_settings, write_tuned_model


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path.name} no longer holds {old!r} once: update this test"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_sweep_nodes_build_validate_and_serialise_in_azure_ai_ml(settings: Settings, tmp_path: Path) -> None:
    job = azure_pipeline(settings, {"model_type": "auto"}, tune=True)
    assert job._validate().passed, job._validate().error_messages
    document = serialised(job)
    tuning = settings.setting("tuning")
    for candidate in settings.model_candidates():
        node = document["jobs"][f"tune_{candidate}"]
        assert node["type"] == "sweep"
        assert node["trial"]["name"].endswith("_train")  # the training component itself
        assert node["inputs"]["model_type"] == candidate
        assert node["objective"] == {"primary_metric": tuning["primary_metric"], "goal": tuning["goal"]}
        combinations = math.prod(len(values) for values in settings.regressors.search_space(candidate).values())
        if combinations <= tuning["max_total_trials"]:  # ridge's one hyperparameter: every value once
            assert (node["sampling_algorithm"], node["limits"]["max_total_trials"]) == ({"type": "grid"}, combinations)
        else:
            assert node["sampling_algorithm"] == {"type": tuning["sampling"], "seed": settings.setting("random_seed")}
            assert node["limits"]["max_total_trials"] == tuning["max_total_trials"]
        assert node["limits"]["max_concurrent_trials"] == tuning["max_concurrent_trials"]
        assert node["limits"]["timeout"] == tuning["timeout_minutes"] * 60
        assert node["early_termination"]["type"] == tuning["early_termination"]["policy"]
        space = {
            name: {"type": "choice", "values": list(values)}
            for name, values in settings.regressors.search_space(candidate).items()
        }
        assert node["search_space"] == space  # regressors.py's declaration, unchanged
    # What `az ml job create --file` would send loads back as the same sweeps, and validates.
    spec = tmp_path / "tuning-job.yml"
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    loaded = load_job(spec)
    assert loaded._validate().passed, loaded._validate().error_messages
    assert {name for name, node in loaded.jobs.items() if node.type == "sweep"} == {
        f"tune_{name}" for name in settings.model_candidates()
    }


def test_tune_azure_dry_run_prints_the_sweep_job_without_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", "--azure", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "type: sweep" in printed
    assert "primary_metric: validation_rmse" in printed


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("sampling", "sobol", "tuning.sampling is 'sobol'; allowed: random, grid, bayesian"),
        ("goal", "maximize", "tuning.goal is 'maximize'; allowed: minimize (the way validation_rmse improves)"),
        ("primary_metric", "rmse", "tuning.primary_metric is 'rmse'; allowed: validation_rmse, validation_r2"),
        ("max_total_trials", 0, "tuning.max_total_trials is 0; allowed: a whole number >= 1"),
        ("timeout_minutes", "1h", "tuning.timeout_minutes is '1h'; allowed: a number of minutes > 0"),
        ("early_termination", {"policy": "hyperband"}, "tuning.early_termination is {'policy': 'hyperband'}"),
    ],
)
def test_a_wrong_tuning_setting_is_named(project: Settings, setting: str, value: object, message: str) -> None:
    config = yaml.safe_load((project.root / "config.yml").read_text())
    config["tuning"][setting] = value
    changed = Settings(project.root, config, project.compute, project.data_asset)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        tuning_settings(changed)


def test_the_tuned_model_is_written_into_config_yml_keeping_its_comments(project: Settings) -> None:
    config_file = project.root / "config.yml"
    before = config_file.read_text(encoding="utf-8").splitlines()
    write_tuned_model(config_file, "random_forest", {"n_estimators": 400, "max_depth": 6, "max_features": 1.0})
    after = config_file.read_text(encoding="utf-8").splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [new.split("#")[0].strip() for _, new in changed] == [
        "type: random_forest",
        "n_estimators: 400",
        "max_depth: 6",
        "max_features: 1.0",
    ]
    assert all(old.partition("#")[2] == new.partition("#")[2] for old, new in changed)  # comments kept
    model = Settings.load(project.root).setting("model")
    assert (model["type"], model["n_estimators"], model["max_depth"], model["max_features"]) == (
        "random_forest",
        400,
        6,
        1.0,
    )


def test_a_model_section_tune_cannot_edit_is_refused_untouched(project: Settings) -> None:
    config_file = project.root / "config.yml"
    text = config_file.read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    flow = text.replace(
        text[text.index("model:\n") : text.index("\n\n", text.index("model:\n"))],
        "model: " + json.dumps(config["model"]),
    )
    config_file.write_text(flow, encoding="utf-8")
    with pytest.raises(SettingsError, match="model"):
        write_tuned_model(config_file, "ridge", {"alpha": 3.0})
    assert config_file.read_text(encoding="utf-8") == flow


def wavy_rows(data: Path, target: str) -> None:
    """The project's rows with a target that only one feature explains, sharply and without noise: a random forest
    with its default hyperparameters (leaves of 10 rows, half the features per split) smooths it away."""
    frame = pd.read_csv(data)
    glucose = frame["Glucose"].fillna(frame["Glucose"].median())
    frame[target] = np.round(70 + 25 * np.sin(glucose / 4), 3)
    frame.to_csv(data, index=False)


def test_a_local_tuning_run_beats_the_default_hyperparameters_on_validation(
    project: Settings, step_host: StepHost
) -> None:
    wavy_rows(project.local_data_path, project.setting("target_column"))
    config_file = project.root / "config.yml"
    replace_once(config_file, "# candidates: [ridge, random_forest]", "candidates: [random_forest]")
    replace_once(config_file, "max_total_trials: 20", "max_total_trials: 8")
    project = Settings.load(project.root)
    defaults = run_pipeline_locally(project, {"model_type": "auto"}, host=step_host)
    tuned = run_pipeline_locally(project, {"model_type": "auto"}, host=step_host, tune=True)

    def validation_rmse(result: object) -> float:
        selection = json.loads((result.outputs["selection"] / "selection.json").read_text())
        return selection["candidates"]["random_forest"]["validation_rmse"]

    # The same validation rows (data_prep reused), the same model type: only the hyperparameters differ.
    assert tuned.steps[0].status == "reused"
    assert validation_rmse(tuned) < 0.8 * validation_rmse(defaults)
    client = mlflow.MlflowClient(project.local_tracking_uri)
    experiment = client.get_run(tuned.mlflow_run_id).info.experiment_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{tuned.mlflow_run_id}'")
    trials = {
        run.info.run_name: run.data.metrics.get("validation_rmse") for run in children if ".trial_" in run.info.run_name
    }
    assert len(trials) == 8 and all(value is not None for value in trials.values())  # each trial a tracked child run
    assert min(trials.values()) == pytest.approx(validation_rmse(tuned))


def test_tune_azure_submits_the_sweeps_then_writes_the_streamed_jobs_winner_into_config_yml(
    project: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_submit import RecordingClient

    client = RecordingClient()
    selection = {
        "winner": "ridge",
        "candidates": {"ridge": {"validation_rmse": 1.0, "validation_r2": 0.5, "hyperparameters": {"alpha": 30.0}}},
    }

    def download(name: str, download_path: str, output_name: str) -> None:
        assert (name, output_name) == ("job-1", "selection")  # the submitted job's, once streamed
        folder = Path(download_path) / "named-outputs" / output_name  # where azure-ai-ml puts a named output
        folder.mkdir(parents=True)
        (folder / "selection.json").write_text(json.dumps(selection))

    client.jobs.download = download
    monkeypatch.setattr(azure_ml, "ml_client", lambda settings: client)
    assert azure_ml.run_azure(project, {"model_type": "auto"}, stream=True, tune=True) == 0
    (job,) = client.jobs.created
    assert {name for name, node in job.jobs.items() if node.type == "sweep"} == {
        f"tune_{name}" for name in project.model_candidates()
    }
    assert client.streamed == ["job-1"]
    model = Settings.load(project.root).setting("model")
    assert (model["type"], model["alpha"]) == ("ridge", 30.0)


def test_without_validation_rows_check_passes_and_tune_says_what_to_set(project: Settings) -> None:
    replace_once(project.root / "config.yml", "validation_size: 0.25", "validation_size: 0.0")
    project = Settings.load(project.root)
    assert "tuning" not in checked_graphs(project)
    with pytest.raises(SettingsError, match="tuning scores its trials on validation rows: set validation_size above 0"):
        local_pipeline(project, {"model_type": "ridge"}, tune=True)
