"""Tuning's settings (config.yml's tuning section, each value checked) and its result, written into config.yml's
model section in place, comments kept; a section it could not write is refused before a sweep starts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from projects import copy_example, load_project

from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.tuning import refuse_unwritable_model_section, tuning_settings, write_tuned_model


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return load_project(copy_example(tmp_path / "project"))


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("sampling", "sobol", "tuning.sampling is 'sobol'; allowed: random, grid, bayesian"),
        ("goal", "most", "tuning.goal is 'most'; allowed: minimize, maximize (the way primary_metric improves)"),
        (
            "primary_metric",
            " ",
            "tuning.primary_metric is ' '; allowed: the name of a metric each trial logs to MLflow",
        ),
        ("max_total_trials", 0, "tuning.max_total_trials is 0; allowed: a whole number >= 1"),
        ("max_concurrent_trials", True, "tuning.max_concurrent_trials is True; allowed: a whole number >= 1"),
        ("timeout_minutes", "1h", "tuning.timeout_minutes is '1h'; allowed: a number of minutes > 0"),
        (
            "early_termination",
            {"policy": "hyperband"},
            "tuning.early_termination is {'policy': 'hyperband'}; allowed: null, or a mapping whose policy is one of "
            "bandit, median_stopping, truncation_selection",
        ),
    ],
)
def test_a_wrong_tuning_setting_is_named(project: Project, setting: str, value: object, message: str) -> None:
    changed = replace(project, config={**project.config, "tuning": {**project.config["tuning"], setting: value}})
    with pytest.raises(SettingsError) as refusal:
        tuning_settings(changed)
    assert str(refusal.value) == f"{project.config_file}: {message}"


def test_the_tuned_model_is_written_into_config_yml_keeping_its_comments(project: Project) -> None:
    before = project.config_file.read_text(encoding="utf-8").splitlines()
    write_tuned_model(project.config_file, "random_forest", {"n_estimators": 400, "max_depth": 6, "max_features": 1.0})
    after = project.config_file.read_text(encoding="utf-8").splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [new.split("#")[0].strip() for _, new in changed] == [
        "type: random_forest",
        "n_estimators: 400",
        "max_depth: 6",
        "max_features: 1.0",
    ]
    assert all(old.partition("#")[2] == new.partition("#")[2] for old, new in changed)  # comments kept
    model = load_project(project.root).setting("model")
    assert (model["type"], model["n_estimators"], model["max_depth"], model["max_features"]) == (
        "random_forest",
        400,
        6,
        1.0,
    )


def in_flow_style(config_file: Path) -> str:
    """config.yml with its ``model:`` section on one line, ``model: {...}``: not lines tune can set in place."""
    text = config_file.read_text(encoding="utf-8")
    section = text[text.index("model:\n") : text.index("\n\n", text.index("model:\n"))]
    flow = text.replace(section, "model: " + json.dumps(yaml.safe_load(text)["model"]))
    config_file.write_text(flow, encoding="utf-8")
    return flow


def test_a_model_section_tune_cannot_edit_is_refused_before_the_sweep_and_left_untouched(project: Project) -> None:
    flow = in_flow_style(project.config_file)
    with pytest.raises(SettingsError, match=r"tune writes the model it finds into the `model:` section"):
        refuse_unwritable_model_section(load_project(project.root))
    with pytest.raises(SettingsError, match="model"):
        write_tuned_model(project.config_file, "ridge", {"alpha": 3.0})
    assert project.config_file.read_text(encoding="utf-8") == flow


def test_a_model_section_that_can_take_the_result_passes_and_is_left_untouched(project: Project) -> None:
    before = project.config_file.read_text(encoding="utf-8")
    refuse_unwritable_model_section(project)
    assert project.config_file.read_text(encoding="utf-8") == before
