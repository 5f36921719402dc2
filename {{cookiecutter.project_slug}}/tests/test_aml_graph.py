"""This project's pipeline graphs (pipeline.py) as the engine reads them: each graph's steps, fan-out, sweeps,
bindings and values. A step added to a graph is added to its list here.

How the engine reads any pipeline job (binding forms, refusals, additional includes) is tested in the engine's own
suite, once for every project.
"""

import math
from pathlib import Path

import pytest

from aml_pipeline_kit.aml_graph import plan_from_job
from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.local_runs import local_job
from aml_pipeline_kit.plan import Binding, Plan
from aml_pipeline_kit.project import Project

from {{ cookiecutter.__package_name }}.parameters import encoded, model_candidates, regressors
from {{ cookiecutter.__package_name }}.pipeline import MONITORING_THRESHOLDS, encoded_id_column
{%- raw %}


def plan_of(project: Project, role: str, overrides: dict | None = None) -> Plan:
    """The graph of ``role`` on this machine's data; scoring and monitoring with any folder standing in for a model."""
    model = None if role in {"training", "tuning"} else project.root / "components"
    return plan_from_job(local_job(project, role, overrides, model=model))


def test_the_training_graph_has_its_steps_in_dependency_order(project: Project, single_model: dict[str, str]) -> None:
    plan = plan_of(project, "training", single_model)
    assert [step.name for step in plan.steps] == ["data_prep", "train", "evaluate", "register"]
    assert plan.step("train").upstream == {"data_prep"}
    assert plan.step("evaluate").upstream == {"data_prep", "train"}
    assert plan.step("register").upstream == {"train", "evaluate"}
    assert plan.outputs == {
        "model": ("train", "model"),
        "report": ("evaluate", "report"),
        "decision": ("register", "decision"),
    }


def test_auto_fans_out_one_cross_validated_train_step_per_candidate_then_selects(project: Project) -> None:
    plan = plan_of(project, "training", {"model_type": "auto"})
    candidates = model_candidates(project)
    trains = [f"train_{name}" for name in candidates]
    assert {step.name for step in plan.steps} == {"data_prep", *trains, "select", "evaluate", "register"}
    assert all(plan.step(name).upstream == {"data_prep"} for name in trains)
    assert {plan.step(name).inputs["model_type"].binding.value for name in trains} == set(candidates)
    assert all(plan.step(name).inputs["cv_folds"].binding == Binding(pipeline_input="cv_folds") for name in trains)
    assert plan.step("select").upstream == set(trains)
    assert plan.step("evaluate").upstream == {"data_prep", "select"}
    assert plan.outputs["model"] == ("select", "model")
    assert plan.outputs["selection"] == ("select", "selection")
    assert plan.inputs["cv_folds"] == project.setting("cv_folds") >= 2


def test_tuning_sweeps_each_candidate_trial_by_trial_each_cross_validated_then_selects(project: Project) -> None:
    plan = plan_of(project, "tuning", {"model_type": "auto"})
    limit = project.setting("tuning", "max_total_trials")
    declared = regressors(project)
    for candidate in model_candidates(project):
        space = declared.search_space(candidate)
        combinations = math.prod(len(values) for values in space.values())
        trials = min(limit, combinations)
        steps = [plan.step(f"tune_{candidate}.trial_{number}") for number in range(trials)]
        for step in steps:
            assert step.inputs["model_type"].binding.value == candidate
            assert step.inputs["cv_folds"].binding == Binding(pipeline_input="cv_folds")
            assert all(step.inputs[name].binding.value in values for name, values in space.items())
        if combinations <= limit:  # a space the trials cover: each combination once (grid), none twice
            assert len({tuple(step.inputs[name].binding.value for name in space) for step in steps}) == combinations
        assert plan.step(f"tune_{candidate}").upstream == {step.name for step in steps}  # the best trial's model
    assert plan.step("select").upstream == {f"tune_{name}" for name in model_candidates(project)}
    assert plan.outputs["model"] == ("select", "model")


def test_tuning_a_single_model_sweeps_it_alone(project: Project, single_model: dict[str, str]) -> None:
    plan = plan_of(project, "tuning", single_model)
    sweeps = {step.name.split(".")[0] for step in plan.steps if step.name.startswith("tune_")}
    assert sweeps == {f"tune_{single_model['model_type']}"}
    assert plan.inputs["cv_folds"] == project.setting("cv_folds") >= 2


def test_a_single_model_is_fitted_once_without_cross_validation(project: Project, single_model: dict[str, str]) -> None:
    plan = plan_of(project, "training", single_model)
    assert plan.inputs.get("cv_folds") is None
    assert plan.step("train").inputs["cv_folds"].binding == Binding()  # unset: fitted, not scored


def test_the_scoring_graph_is_one_parallel_score_step_on_the_model_and_the_rows(project: Project) -> None:
    plan = plan_of(project, "scoring")
    assert [step.name for step in plan.steps] == ["score"]
    score = plan.step("score")
    assert "parallel_runner.py" in score.command  # the engine runs the parallel node mini-batch by mini-batch
    assert score.code == project.root / "components" / "score"
    assert score.inputs["data"].type == "uri_file"  # a single CSV here: one mini-batch
    assert score.inputs["model"].binding == Binding(pipeline_input="model")
    assert score.inputs["data"].binding == Binding(pipeline_input="data")
    assert score.inputs["id_column"].binding == Binding(pipeline_input="id_column")
    assert plan.inputs.get("id_column") == encoded_id_column(project)  # unset: the rows are numbered
    assert plan.outputs == {"predictions": ("score", "predictions")}


def test_the_monitoring_graph_splits_as_training_did_then_scores_and_compares_the_batch(project: Project) -> None:
    plan = plan_of(project, "monitoring")
    assert {step.name for step in plan.steps} == {"data_prep", "evaluate", "score", "monitor"}
    assert plan.step("evaluate").upstream == {"data_prep"}
    assert plan.step("score").upstream == set()
    assert plan.step("monitor").upstream == {"data_prep", "evaluate", "score"}
    monitor = plan.step("monitor")
    assert monitor.inputs["predictions"].binding == Binding(node="score", output="predictions")
    assert monitor.inputs["test_report"].binding == Binding(node="evaluate", output="report")
    assert monitor.inputs["batch"].binding == Binding(pipeline_input="batch")
    assert plan.step("data_prep").inputs["input_data"].binding == Binding(pipeline_input="training_data")
    assert plan.step("data_prep").inputs["cv_folds"].binding == Binding()  # the reference: the whole train split
    training = plan_of(project, "training")
    for name in ("target_column", "numeric_columns", "categorical_columns", "test_size", "random_seed"):
        assert plan.inputs[name] == training.inputs[name], name  # the same split as training's
    assert {name: plan.inputs[name] for name in MONITORING_THRESHOLDS} == project.setting("monitoring", "thresholds")
    assert plan.outputs == {"report": ("monitor", "report"), "predictions": ("score", "predictions")}


def test_monitoring_thresholds_must_be_exactly_the_known_ones(project: Project) -> None:
    config = {**project.config, "monitoring": {**project.config["monitoring"], "thresholds": {"psi": 0.2}}}
    broken = Project(project.root, config, project.compute, project.data_asset, project.pipelines_module)
    with pytest.raises(SettingsError, match=r"monitoring\.thresholds must set exactly psi, p_value"):
        plan_of(broken, "monitoring")


def test_the_graph_resolves_bindings_and_component_metadata(project: Project, single_model: dict[str, str]) -> None:
    plan = plan_of(project, "training", single_model)
    prep, train = plan.step("data_prep"), plan.step("train")
    assert prep.inputs["input_data"].binding == Binding(pipeline_input="input_data")
    assert prep.inputs["input_data"].type == "uri_file"
    assert train.inputs["prepped_data"].binding == Binding(node="data_prep", output="prepped_data")
    assert train.inputs["max_depth"].optional
    assert train.inputs["alpha"].binding == Binding(pipeline_input="alpha")
    assert prep.code == project.root / "components" / "data_prep"
    assert train.code == project.root / "components" / "train"
    assert train.outputs == {"model": "mlflow_model"}
    assert "${{inputs.prepped_data}}" in train.command


def test_the_graph_carries_config_yml_and_the_overrides(project: Project) -> None:
    plan = plan_of(project, "training", {"model_type": "random_forest", "max_depth": 6})
    assert Path(plan.inputs["input_data"]) == project.local_data_path
    assert plan.inputs["target_column"] == encoded(project.setting("target_column"))
    assert plan.inputs["test_size"] == project.setting("test_size")
    assert plan.inputs["model_type"] == "random_forest"
    assert plan.inputs["max_depth"] == 6
    assert plan.inputs["registered_model_name"] == project.setting("azure", "registered_model_name")
{%- endraw %}
