"""The project's pipelines, built with ``@dsl.pipeline``: training (data_prep -> train -> evaluate -> register; with
``auto``, candidates -> select before evaluate), tuning (the same with a sweep node per candidate), batch
scoring (score) and monitoring (data_prep -> evaluate, score -> monitor).

Each graph is the single description of its pipeline. Azure ML runs it on a compute cluster (``make submit``); the
engine, aml-pipeline-kit, runs the same nodes and command lines on this machine (``make run``). It finds them by
``register_pipelines`` (pyproject.toml's ``[tool.aml-pipeline-kit]``) and hands each its inputs: a CSV and a model on
this machine, or a data asset and a registered model on Azure ML. Nothing here contacts Azure.
"""

import importlib.util
import inspect
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, dsl, load_component
from azure.ai.ml.entities import CommandComponent, Parallel, PipelineJob

from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.sweeps import sweep_settings, swept

from .parameters import AUTO, encoded, model_candidates, pipeline_inputs, regressors

# azure-ai-ml warns on every load that its own schema classes are experimental: nothing a user can act on.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)

MONITORING_THRESHOLDS = ("psi", "p_value", "missing_rate_increase", "unseen_rate", "rmse_ratio")
ROW_TYPES = ("uri_file", "uri_folder", "mltable")  # what batch scoring and monitoring read: a file, a folder, a table
# config.yml's scoring.parallel: each setting's smallest value (-1: no limit on failures, as Azure ML takes it).
PARALLEL_MINIMUMS = {
    "instance_count": 1,
    "max_concurrency_per_instance": 1,
    "error_threshold": -1,
    "mini_batch_error_threshold": -1,
    "retries": 1,  # Azure ML's max_retries counts the first try
    "timeout": 1,
}
# Azure ML's mini_batch_size: a number of files, or a size in bytes with an optional unit.
MINI_BATCH_SIZE = re.compile(r"[1-9][0-9]*(\s*[kKmMgG][bB])?")


def register_pipelines(project: Project) -> dict[str, Callable[..., PipelineJob] | str]:
    """The pipelines the engine runs, by role (aml_pipeline_kit/project.py says what each is given)."""
    tuning = tuning_pipeline if project.setting("cv_folds") else NO_CROSS_VALIDATION
    scoring, monitoring = scoring_pipeline, monitoring_pipeline
    return {"training": training_pipeline, "tuning": tuning, "scoring": scoring, "monitoring": monitoring}


NO_CROSS_VALIDATION = "tuning scores its trials by cross-validation: set cv_folds to 2 or more in config.yml"


def load_components(project: Project, *names: str) -> dict[str, CommandComponent]:
    """The named steps' components from components/<name>/: data_prep defined in Python with ``command()``, the
    others by their YAML specs."""
    folder = project.root / "components"
    return {
        name: load_python_component(folder / name / "component.py", name)
        if name == "data_prep"
        else load_component(folder / name / f"{name}.yml")
        for name in names
    }


def load_python_component(path: Path, attribute: str) -> Any:
    """What a component defined in Python offers (a component made with ``command()``, a function that builds
    one), imported from its own folder."""
    spec = importlib.util.spec_from_file_location(f"components.{path.parent.name}", path)
    if spec is None or spec.loader is None:
        raise SettingsError(f"{path}: cannot be imported as a component definition")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def taking(inputs: dict[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator: ``function(**inputs)`` shown to the dsl as a function of one parameter per input, annotated
    with its type, as the dsl reads pipeline inputs: a graph's inputs declared as data (so the hyperparameters
    follow regressors.py, and the training and monitoring graphs share data_prep's)."""

    def declared(function: Callable[..., Any]) -> Callable[..., Any]:
        function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in inputs]
        )
        function.__annotations__ = dict(inputs)
        return function

    return declared


def project_pipeline(
    project: Project, suffix: str, display_name: str, description: str
) -> Callable[[Callable[..., Any]], Callable[..., PipelineJob]]:
    """``@dsl.pipeline`` as every graph of the project takes it: the project's experiment, a name (the experiment's
    with ``suffix``, a Python name, as the dsl wants it) and the project's compute cluster for its steps."""
    experiment = project.setting("azure", "experiment_name")
    return dsl.pipeline(
        name=experiment.replace("-", "_") + suffix,
        experiment_name=experiment,
        default_compute=project.compute["name"],
        display_name=display_name,
        description=description,
    )


def split_inputs() -> dict[str, Any]:
    """data_prep's inputs that the training and the monitoring graph both take as their own, by type (a new dict each
    time: the dsl keeps what it is given): monitoring splits the training data as training did."""
    return {
        "target_column": str,
        "numeric_columns": Input(type="string", optional=True),
        "categorical_columns": Input(type="string", optional=True),
        "test_size": float,
        "random_seed": int,
    }


def training_pipeline(project: Project, data: Input, overrides: dict[str, Any] | None = None) -> PipelineJob:
    """The training pipeline on ``data``, with config.yml's parameters unless ``overrides`` sets them."""
    return regression_pipeline(project, data, overrides, tune=False)


def tuning_pipeline(project: Project, data: Input, overrides: dict[str, Any] | None = None) -> PipelineJob:
    """The training pipeline with each candidate a sweep node over its search space (regressors.py), with
    config.yml's tuning settings, its best trial the candidate."""
    return regression_pipeline(project, data, overrides, tune=True)


def regression_pipeline(project: Project, data: Input, overrides: dict[str, Any] | None, tune: bool) -> PipelineJob:
    """With ``model_type: auto`` the graph fans out: one train node per candidate (run in parallel by Azure ML and
    by the local runner), each scored by k-fold cross-validation on the train split, then fitted on all of it; a
    select node picks the winner by its scores and passes its model on. Otherwise a single train node fits the model
    on the whole train split. ``tune`` makes each candidate (with a single model type, that one) a sweep node, whose
    trials are scored the same way. Evaluation and registration follow either way.

    The folds run inside each candidate's step, not as nodes of their own: a sweep trial is one command job, and
    docs/design_decisions.md of the template has the numbers.
    """
    components = load_components(project, "data_prep", "train", "select", "evaluate", "register")
    parameters = pipeline_inputs(project, overrides)
    model_type = parameters["model_type"]
    candidates = model_candidates(project) if model_type == AUTO else [model_type] if tune else []
    if not candidates:
        parameters["cv_folds"] = None  # a single model is fitted once, with nothing to compare it with
    elif not parameters["cv_folds"]:  # select would find no scores, after every candidate trained
        scored = "tuning scores its trials" if tune else "model type auto picks the best candidate"
        raise SettingsError(f"{project.config_file}: {scored} by cross-validation: set cv_folds to 2 or more")
    sweep = sweep_settings(project) if tune else None

    declared = regressors(project)
    hyperparameters = list(declared.HYPERPARAMETERS)  # each also an input of train.yml
    train_inputs = components["train"].inputs
    inputs = {
        "input_data": Input(type="uri_file"),
        **split_inputs(),
        "cv_folds": Input(type="integer", optional=True),
        "model_type": str,
        **{name: Input(type=train_inputs[name].type, optional=train_inputs[name].optional) for name in hyperparameters},
        "registered_model_name": str,
        "min_r2": float,
    }

    @project_pipeline(
        project,
        "_tune" if tune else "",
        "Tuning pipeline" if tune else "Regression pipeline",
        "Prepare the data, sweep the regressors' hyperparameters scored by cross-validation on the train split, keep "
        "the best fitted on the whole train split, evaluate it against a baseline, register it if better."
        if tune
        else "Prepare the data, train a regressor, evaluate it against a baseline, register it if better.",
    )
    @taking(inputs)
    def regression(**inputs: Any) -> dict[str, Any]:
        data_prep = components["data_prep"](
            input_data=inputs["input_data"],
            cv_folds=inputs["cv_folds"],
            **{name: inputs[name] for name in split_inputs()},
        )
        prepped_data = data_prep.outputs.prepped_data
        training = {name: inputs[name] for name in [*hyperparameters, "random_seed"]}
        outputs: dict[str, Any] = {}
        if candidates:

            def candidate_model(model_type: str) -> Any:
                """A train node of ``model_type`` (``train_<type>``), or a sweep node of them (``tune_<type>``)."""

                def train(**values: Any) -> Any:
                    return components["train"](
                        prepped_data=prepped_data,
                        model_type=model_type,
                        cv_folds=inputs["cv_folds"],
                        **{**training, **values},
                    )

                node = swept(train, declared.search_space(model_type), sweep) if sweep else train()
                node.name = f"{'tune' if sweep else 'train'}_{model_type}"
                return node.outputs.model

            trained = [candidate_model(candidate) for candidate in candidates]
            # select's ports are generic: it names each candidate by the model type its model was trained as.
            select = components["select"](**{f"candidate_{number}": model for number, model in enumerate(trained, 1)})
            model, outputs["selection"] = select.outputs.model, select.outputs.selection
        else:
            train = components["train"](prepped_data=prepped_data, model_type=inputs["model_type"], **training)
            model = train.outputs.model
        evaluate = components["evaluate"](model=model, prepped_data=prepped_data)
        register = components["register"](
            model=model,
            report=evaluate.outputs.report,
            model_name=inputs["registered_model_name"],
            min_r2=inputs["min_r2"],
        )
        return {"model": model, "report": evaluate.outputs.report, "decision": register.outputs.decision, **outputs}

    return regression(input_data=data, **parameters)


def encoded_id_column(project: Project) -> str:
    """config.yml's scoring.id_column as the score step takes it: a column name or null, base64-encoded JSON."""
    id_column = project.setting("scoring", "id_column")
    return encoded(None if id_column is None else str(id_column))


def parallel_settings(project: Project) -> dict[str, Any]:
    """config.yml's scoring.parallel, checked: how Azure ML (and the local runner) splits the scoring work."""
    settings = project.setting("scoring", "parallel")
    expected = ["mini_batch_size", *PARALLEL_MINIMUMS]
    where = f"{project.config_file}: scoring.parallel"
    if not isinstance(settings, dict) or sorted(settings) != sorted(expected):
        found = ", ".join(map(str, settings)) if isinstance(settings, dict) else repr(settings)
        raise SettingsError(f"{where} must set exactly {', '.join(expected)} (found: {found})")
    size = settings["mini_batch_size"]
    if isinstance(size, bool) or not MINI_BATCH_SIZE.fullmatch(str(size)):
        raise SettingsError(
            f"{where}.mini_batch_size {size!r} must be a number of files (e.g. 10) or a size (e.g. 10MB, 512kb)"
        )
    for name, minimum in PARALLEL_MINIMUMS.items():
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SettingsError(f"{where}.{name} {value!r} must be a whole number, {minimum} or more")
    if settings["instance_count"] > (most := int(project.compute["max_instances"])):
        raise SettingsError(
            f"{where}.instance_count {settings['instance_count']} is more than the cluster's max_instances, {most} "
            "(aml/compute.yml)"
        )
    return settings


def rows_type(data: Input, role: str) -> str:
    """The type of the rows a graph is given, which its steps then declare: a file, a folder or an MLTable."""
    if data.type not in ROW_TYPES:
        raise SettingsError(f"the {role} pipeline reads {', '.join(ROW_TYPES)}; it was given {data.type!r}")
    return data.type


def batch_scoring(project: Project, data_type: str) -> Parallel:
    """components/score/component.py's parallel step for rows of ``data_type``, with config.yml's settings."""
    build = load_python_component(project.root / "components" / "score" / "component.py", "batch_scoring")
    return build(parallel_settings(project), data_type)


def scoring_pipeline(project: Project, model: Input, data: Input) -> PipelineJob:
    """The batch-scoring job: the MLflow model ``model`` predicts every row of ``data``, a file, a folder of CSV and
    Parquet files or an MLTable, mini-batch by mini-batch in a parallel step."""
    data_type = rows_type(data, "scoring")
    score_step = batch_scoring(project, data_type)

    @project_pipeline(
        project,
        "_score",
        "Batch scoring",
        "Check each mini-batch of rows against the model's features, predict its rows, write their predictions.",
    )
    @taking({"model": Input(type="mlflow_model"), "data": Input(type=data_type), "id_column": str})
    def scoring(**inputs: Any) -> dict[str, Any]:
        score = score_step(**inputs)
        score.name = "score"
        return {"predictions": score.outputs.predictions}

    return scoring(model=model, data=data, id_column=encoded_id_column(project))


def monitoring_thresholds(project: Project) -> dict[str, float]:
    """config.yml's monitoring.thresholds, one pipeline input each."""
    thresholds = project.setting("monitoring", "thresholds")
    if not isinstance(thresholds, dict) or set(thresholds) != set(MONITORING_THRESHOLDS):
        found = ", ".join(thresholds) if isinstance(thresholds, dict) else repr(thresholds)
        raise SettingsError(
            f"{project.config_file}: monitoring.thresholds must set exactly {', '.join(MONITORING_THRESHOLDS)}"
            f" (found: {found})"
        )
    return thresholds


def monitoring_pipeline(project: Project, model: Input, training_data: Input, batch: Input) -> PipelineJob:
    """The monitoring job: ``model`` on ``batch`` (a file, a folder or an MLTable, as scoring reads) against the
    training data it came from.

    data_prep splits ``training_data`` as the training pipeline does (config.yml's target, features, test_size and
    seed), so the reference is the train split and evaluate gives the model's test metrics; score predicts the batch
    (and refuses rows the model cannot score); monitor compares, reports and fails past a threshold.
    """
    components = load_components(project, "data_prep", "evaluate", "monitor")
    batch_type = rows_type(batch, "monitoring")
    # monitor.yml declares a file; it reads a folder (or an MLTable's folder) the same way, as it is given.
    components["monitor"].inputs["batch"].type = batch_type
    score_step = batch_scoring(project, batch_type)
    training = pipeline_inputs(project)
    inputs = {
        "model": Input(type="mlflow_model"),
        "training_data": Input(type="uri_file"),
        "batch": Input(type=batch_type),
        **split_inputs(),
        "id_column": str,
        **dict.fromkeys(MONITORING_THRESHOLDS, float),
    }

    @project_pipeline(
        project,
        "_monitor",
        "Model monitoring",
        "Drift of the features and predictions, missing and unseen values, and quality of a new batch.",
    )
    @taking(inputs)
    def monitoring(**inputs: Any) -> dict[str, Any]:
        model, batch = inputs["model"], inputs["batch"]
        data_prep = components["data_prep"](
            input_data=inputs["training_data"], **{name: inputs[name] for name in split_inputs()}
        )
        evaluate = components["evaluate"](model=model, prepped_data=data_prep.outputs.prepped_data)
        score = score_step(model=model, data=batch, id_column=inputs["id_column"])
        score.name = "score"
        monitor = components["monitor"](
            model=model,
            prepped_data=data_prep.outputs.prepped_data,
            test_report=evaluate.outputs.report,
            batch=batch,
            predictions=score.outputs.predictions,
            **{name: inputs[name] for name in MONITORING_THRESHOLDS},
        )
        return {"report": monitor.outputs.report, "predictions": score.outputs.predictions}

    return monitoring(
        model=model,
        training_data=training_data,
        batch=batch,
        **{name: training[name] for name in split_inputs()},
        id_column=encoded_id_column(project),
        **monitoring_thresholds(project),
    )
