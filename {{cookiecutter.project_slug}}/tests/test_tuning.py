"""Tuning (`make tune`): the tuning graph's sweep nodes as azure-ai-ml builds, validates and serialises them for Azure
ML (offline) from regressors.py's search spaces and config.yml's tuning settings (test_aml_graph.py: its trials as
the local runner runs them). How the engine samples, runs and tracks trials, checks the tuning settings and writes
the tuned model into config.yml is tested in its own suite."""

import math
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_job

from aml_pipeline_kit.aml_graph import serialised
from aml_pipeline_kit.azure_ml import training_job
from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.local_runs import checked_graphs, local_job
from aml_pipeline_kit.project import Project

from {{ cookiecutter.__package_name }}.parameters import model_candidates, regressors


def test_the_sweep_nodes_build_validate_and_serialise_in_azure_ai_ml(project: Project, tmp_path: Path) -> None:
    job = training_job(project, {"model_type": "auto"}, tune=True)
    assert job._validate().passed, job._validate().error_messages
    document = serialised(job)
    tuning = project.setting("tuning")
    declared = regressors(project)
    for candidate in model_candidates(project):
        node = document["jobs"][f"tune_{candidate}"]
        assert node["type"] == "sweep"
        assert node["trial"]["name"].endswith("_train")  # the training component itself
        assert node["inputs"]["model_type"] == candidate
        assert node["objective"] == {"primary_metric": tuning["primary_metric"], "goal": tuning["goal"]}
        combinations = math.prod(len(values) for values in declared.search_space(candidate).values())
        if combinations <= tuning["max_total_trials"]:  # ridge's one hyperparameter: every value once
            assert (node["sampling_algorithm"], node["limits"]["max_total_trials"]) == ({"type": "grid"}, combinations)
        else:
            assert node["sampling_algorithm"] == {"type": tuning["sampling"], "seed": project.setting("random_seed")}
            assert node["limits"]["max_total_trials"] == tuning["max_total_trials"]
        assert node["limits"]["max_concurrent_trials"] == tuning["max_concurrent_trials"]
        assert node["limits"]["timeout"] == tuning["timeout_minutes"] * 60
        assert node["early_termination"]["type"] == tuning["early_termination"]["policy"]
        space = {
            name: {"type": "choice", "values": list(values)}
            for name, values in declared.search_space(candidate).items()
        }
        assert node["search_space"] == space  # regressors.py's declaration, unchanged
    # What `az ml job create --file` would send loads back as the same sweeps, and validates.
    spec = tmp_path / "tuning-job.yml"
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    loaded = load_job(spec)
    assert loaded._validate().passed, loaded._validate().error_messages
    assert {name for name, node in loaded.jobs.items() if node.type == "sweep"} == {
        f"tune_{name}" for name in model_candidates(project)
    }


def test_without_cross_validation_check_passes_without_the_tuning_graph_and_tuning_says_what_to_set(
    scratch: Project, single_model: dict[str, str]
) -> None:
    with pytest.raises(SettingsError, match="tuning scores its trials by cross-validation: set cv_folds to 2 or more"):
        local_job(scratch, "tuning", {**single_model, "cv_folds": 0})
    config = yaml.safe_load(scratch.config_file.read_text(encoding="utf-8"))
    config.update(cv_folds=0, model={**config["model"], "type": single_model["model_type"]})
    scratch.config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert set(checked_graphs(Project.load(scratch.root))) == {"training", "scoring", "monitoring"}
