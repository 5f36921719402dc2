"""This project's pipeline graphs as the local runner reads them: steps, fan-out, sweeps, bindings, values.

How the machinery reads any pipeline job (binding forms, refusals, additional includes) is tested in the template
this project was rendered from, once for every project.
"""

import math
from pathlib import Path

import pytest

from aml_pipeline_kit.aml_graph import plan_from_job
from aml_pipeline_kit.plan import Binding

from diabetes_blood_pressure.pipeline import local_pipeline
from diabetes_blood_pressure.settings import Settings, SettingsError, encoded


def test_plan_has_the_steps_in_dependency_order(settings: Settings, single_model: dict[str, str]) -> None:
    plan = plan_from_job(local_pipeline(settings, single_model))
    assert [step.name for step in plan.steps] == ["data_prep", "train", "evaluate", "register"]
    assert plan.step("train").upstream == {"data_prep"}
    assert plan.step("evaluate").upstream == {"data_prep", "train"}
    assert plan.step("register").upstream == {"train", "evaluate"}
    assert plan.outputs == {
        "model": ("train", "model"),
        "report": ("evaluate", "report"),
        "decision": ("register", "decision"),
    }


def test_auto_fans_out_one_train_step_per_candidate_then_selects_and_refits(settings: Settings) -> None:
    plan = plan_from_job(local_pipeline(settings, {"model_type": "auto"}))
    trains = [f"train_{name}" for name in settings.model_candidates()]
    assert {step.name for step in plan.steps} == {"data_prep", *trains, "select", "refit", "evaluate", "register"}
    assert all(plan.step(name).upstream == {"data_prep"} for name in trains)
    assert {plan.step(name).inputs["model_type"].binding.value for name in trains} == set(settings.model_candidates())
    assert plan.step("select").upstream == {"data_prep", *trains}
    assert plan.step("refit").upstream == {"data_prep", "select"}
    assert plan.step("refit").inputs["selection"].binding.node == "select"
    assert plan.step("evaluate").upstream == {"data_prep", "refit"}
    assert plan.outputs["model"] == ("refit", "model")
    assert plan.outputs["selection"] == ("select", "selection")
    assert plan.inputs["validation_size"] == settings.setting("validation_size") > 0


def test_tuning_sweeps_each_candidate_trial_by_trial_then_selects_and_refits(settings: Settings) -> None:
    plan = plan_from_job(local_pipeline(settings, {"model_type": "auto"}, tune=True))
    limit = settings.setting("tuning", "max_total_trials")
    for candidate in settings.model_candidates():
        space = settings.regressors.search_space(candidate)
        combinations = math.prod(len(values) for values in space.values())
        trials = min(limit, combinations)
        steps = [plan.step(f"tune_{candidate}.trial_{number}") for number in range(trials)]
        for step in steps:
            assert step.inputs["model_type"].binding.value == candidate
            assert all(step.inputs[name].binding.value in values for name, values in space.items())
        if combinations <= limit:  # a space the trials cover: each combination once (grid), none twice
            assert len({tuple(step.inputs[name].binding.value for name in space) for step in steps}) == combinations
        assert plan.step(f"tune_{candidate}").upstream == {step.name for step in steps}  # the best trial's model
    assert plan.step("select").upstream == {"data_prep", *(f"tune_{name}" for name in settings.model_candidates())}
    assert plan.outputs["model"] == ("refit", "model")


def test_tuning_a_single_model_sweeps_it_alone(settings: Settings, single_model: dict[str, str]) -> None:
    plan = plan_from_job(local_pipeline(settings, single_model, tune=True))
    sweeps = {step.name.split(".")[0] for step in plan.steps if step.name.startswith("tune_")}
    assert sweeps == {f"tune_{single_model['model_type']}"}
    assert plan.inputs["validation_size"] == settings.setting("validation_size") > 0


def test_a_single_model_sets_no_validation_rows_aside(settings: Settings, single_model: dict[str, str]) -> None:
    assert plan_from_job(local_pipeline(settings, single_model)).inputs["validation_size"] == 0


def test_plan_resolves_bindings_and_component_metadata(settings: Settings, single_model: dict[str, str]) -> None:
    plan = plan_from_job(local_pipeline(settings, single_model))
    prep, train = plan.step("data_prep"), plan.step("train")
    assert prep.inputs["input_data"].binding == Binding(pipeline_input="input_data")
    assert prep.inputs["input_data"].type == "uri_file"
    assert train.inputs["prepped_data"].binding == Binding(node="data_prep", output="prepped_data")
    assert train.inputs["max_depth"].optional
    assert train.inputs["alpha"].binding == Binding(pipeline_input="alpha")
    assert prep.code == settings.root / "components" / "data_prep"
    assert train.code == settings.root / "components" / "train"
    assert train.outputs == {"model": "mlflow_model"}
    assert "${{inputs.prepped_data}}" in train.command


def test_plan_carries_the_pipeline_input_values(settings: Settings) -> None:
    plan = plan_from_job(local_pipeline(settings, {"model_type": "random_forest", "max_depth": 6}))
    assert Path(plan.inputs["input_data"]) == settings.local_data_path
    assert plan.inputs["target_column"] == encoded(settings.setting("target_column"))
    assert plan.inputs["test_size"] == settings.setting("test_size")
    assert plan.inputs["model_type"] == "random_forest"
    assert plan.inputs["max_depth"] == 6


def test_an_unknown_parameter_is_refused(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="unknown pipeline parameter 'n_trees'"):
        local_pipeline(settings, {"n_trees": 3})
