"""config.yml as the pipelines take it (parameters.py): its values, `-p` overrides, and a change of target after the
project was rendered, when the features listed were inferred for the former one."""

import json

import pytest
import yaml

from aml_pipeline_kit.cli import main
from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.local_runs import run_pipeline_locally
from aml_pipeline_kit.project import ROOT_VARIABLE, Project
from aml_pipeline_kit.step_host import StepHost

from {{ cookiecutter.__package_name }}.parameters import column_input, encoded, pipeline_inputs


def test_an_unknown_parameter_is_refused_naming_the_parameters(project: Project) -> None:
    with pytest.raises(SettingsError, match=r"^unknown pipeline parameter 'n_trees'; parameters are: target_column, "):
        pipeline_inputs(project, {"n_trees": 3})


def test_column_names_reach_the_steps_as_base64_encoded_json(project: Project) -> None:
    inputs = pipeline_inputs(project, {"numeric_columns": "a b, c,", "categorical_columns": ["x"]})
    assert inputs["target_column"] == encoded(project.setting("target_column"))
    assert (inputs["numeric_columns"], inputs["categorical_columns"]) == (encoded(["a b", "c"]), encoded(["x"]))
    assert column_input("numeric_columns", None) is None  # unset: data_prep infers them
    assert column_input("numeric_columns", []) is None


def another_target(project: Project) -> str:
    """A numeric feature of config.yml: a column a user might choose to predict instead."""
    return project.setting("features", "numeric")[0]


def with_config(project: Project, **changes: object) -> Project:
    """``project`` with config.yml's top-level settings changed, in the file (as a user edits it), read anew."""
    config = yaml.safe_load(project.config_file.read_text(encoding="utf-8"))
    project.config_file.write_text(yaml.safe_dump({**config, **changes}, sort_keys=False), encoding="utf-8")
    return Project.load(project.root)


def test_a_new_target_still_listed_as_a_feature_is_refused_in_one_line_saying_what_to_edit(
    scratch: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = another_target(scratch)
    changed = with_config(scratch, target_column=target)
    monkeypatch.setenv(ROOT_VARIABLE, str(changed.root))
    assert main(["check"]) == 2  # `make check`; `make run` and `make submit` check first
    assert capsys.readouterr().err.splitlines() == [
        f"error: {changed.config_file}: target_column {target!r} is also listed in features.numeric: remove it there "
        "(and list the former target if it should be a feature), or empty both features lists to infer them from "
        "the CSV on every run"
    ]


def test_with_empty_features_lists_a_run_predicts_another_target_from_every_other_column(
    scratch: Project, step_host: StepHost, single_model: dict[str, str]
) -> None:
    former, target = scratch.setting("target_column"), another_target(scratch)
    changed = with_config(scratch, target_column=target, features={"numeric": [], "categorical": []})
    result = run_pipeline_locally(changed, single_model, check=True, host=step_host)
    assert result.status == "completed"
    features = json.loads((result.run_dir / "data_prep" / "prepped_data" / "features.json").read_text())
    assert features["target"] == target
    assert target not in features["numeric"] + features["categorical"]
    assert former in features["numeric"]  # the former target, a number, is a feature now
    metrics = json.loads((result.outputs["report"] / "metrics.json").read_text())
    assert metrics["n_test_rows"] > 0


def test_without_cross_validation_auto_is_refused_before_a_run_in_one_line_saying_what_to_set(
    scratch: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """select compares the candidates' cross-validation scores: without any it would fail after every one trained."""
    changed = with_config(scratch, cv_folds=0, model={**scratch.setting("model"), "type": "auto"})
    monkeypatch.setenv(ROOT_VARIABLE, str(changed.root))
    assert main(["check"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {changed.config_file}: model type auto picks the best candidate by cross-validation: set cv_folds "
        "to 2 or more"
    ]


@pytest.mark.parametrize("folds", [1, -3, 2.5, "5", True])
def test_a_number_of_folds_that_is_not_a_whole_number_of_2_or_more_is_refused_in_one_line(
    project: Project, folds: object
) -> None:
    with pytest.raises(SettingsError) as refusal:
        pipeline_inputs(project, {"cv_folds": folds})
    assert str(refusal.value) == (
        f"{project.config_file}: cv_folds {folds!r} must be a whole number of 2 or more (the folds the train split is "
        "cross-validated in, to choose a model or score a tuning trial), or 0 for none"
    )
    assert pipeline_inputs(project, {"cv_folds": 3})["cv_folds"] == 3
