"""The pipeline graphs, built with ``@dsl.pipeline``: training (data_prep -> train -> evaluate -> register; with
``auto``, candidates -> select -> refit before evaluate), tuning (the same with a sweep node per candidate, which
sweeps.py builds), batch scoring (score) and monitoring (data_prep -> evaluate, score -> monitor).

Each graph is the single description of its pipeline. Azure ML runs it on a
compute cluster (``submit``, ``score --azure``); the local runner runs the same
nodes and command lines on this machine (``run --local``, ``score --local``, ``monitor --local``).
Nothing here contacts Azure.
"""

import importlib.util
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, dsl, load_component
from azure.ai.ml.entities import CommandComponent, PipelineJob

from .settings import AUTO, COMPONENTS_DIR, Settings, SettingsError, encoded
from .sweeps import candidate_model, sweep_settings
from .tuning import tuning_findings

# azure-ai-ml warns on every load that its own schema classes are experimental: nothing a user can act on.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)


def load_python_component(path: Path, attribute: str) -> CommandComponent:
    """A component defined in Python with ``command()``, imported from its own folder."""
    spec = importlib.util.spec_from_file_location(f"components.{path.parent.name}", path)
    if spec is None or spec.loader is None:
        raise SettingsError(f"{path}: cannot be imported as a component definition")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def load_components(components_dir: Path = COMPONENTS_DIR) -> dict[str, CommandComponent]:
    return {
        "data_prep": load_python_component(components_dir / "data_prep" / "component.py", "data_prep"),
        "train": load_component(components_dir / "train" / "train.yml"),
        "evaluate": load_component(components_dir / "evaluate" / "evaluate.yml"),
        "select": load_component(components_dir / "select" / "select.yml"),
        "register": load_component(components_dir / "register" / "register.yml"),
    }


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
    settings: Settings, suffix: str, display_name: str, description: str
) -> Callable[[Callable[..., Any]], Callable[..., PipelineJob]]:
    """``@dsl.pipeline`` as every graph of the project takes it: the project's experiment, a name (the experiment's
    with ``suffix``, a Python name, as the dsl wants it) and the project's compute cluster for its steps."""
    experiment = settings.setting("azure", "experiment_name")
    return dsl.pipeline(
        name=experiment.replace("-", "_") + suffix,
        experiment_name=experiment,
        default_compute=settings.compute["name"],
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


def rows(csv: str | Path) -> Input:
    """A CSV as a graph's input: a file on this machine (made absolute: the steps run in their own folders), or a
    reference Azure ML resolves (a data asset, a datastore path)."""
    return Input(type="uri_file", path=str(csv.resolve()) if isinstance(csv, Path) else csv)


def model_input(model: str | Path | None, settings: Settings) -> Input:
    """The model a scoring or monitoring graph runs: a model folder on this machine (made absolute), a registered
    model (``azureml:<name>@latest`` or ``:<version>``), by default the newest version of the one the training
    pipeline registers."""
    if isinstance(model, Path):
        return Input(type="mlflow_model", path=str(model.resolve()))
    return Input(type="mlflow_model", path=model or registered_model_uri(settings))


def registered_model_uri(settings: Settings) -> str:
    """The newest version of the model the training pipeline registers, as Azure ML names it."""
    return f"azureml:{settings.setting('azure', 'registered_model_name')}@latest"


def build_pipeline(
    settings: Settings, data: Input, overrides: dict[str, Any] | None = None, tune: bool = False
) -> PipelineJob:
    """The pipeline job on ``data``, with config.yml's parameters unless ``overrides`` sets them.

    With ``model_type: auto`` the graph fans out: one train node per candidate (run in parallel by Azure ML and
    by the local runner), then a select node picks the winner on the validation split and a refit node trains it
    again on the whole train split; otherwise a single train node on the whole train split. ``tune`` makes each
    candidate (with a single model type, that one) a sweep node over its search space (regressors.py), with
    config.yml's tuning settings, its best trial the candidate. Evaluation and registration follow either way.
    """
    components = load_components(settings.root / "components")
    parameters = settings.pipeline_inputs_with(overrides)
    model_type = parameters["model_type"]
    candidates = settings.model_candidates() if model_type == AUTO else [model_type] if tune else []
    if not candidates:
        parameters["validation_size"] = 0.0  # a single model needs no validation rows: train on them all
    sweep = sweep_settings(settings) if tune else None
    if sweep and not parameters["validation_size"]:
        raise SettingsError(
            f"{settings.root / 'config.yml'}: tuning scores its trials on validation rows: set validation_size above 0"
        )

    hyperparameters = list(settings.regressors.HYPERPARAMETERS)  # each also an input of train.yml
    train_inputs = components["train"].inputs
    inputs = {
        "input_data": Input(type="uri_file"),
        **split_inputs(),
        "validation_size": float,
        "model_type": str,
        **{name: Input(type=train_inputs[name].type, optional=train_inputs[name].optional) for name in hyperparameters},
        "registered_model_name": str,
        "min_r2": float,
    }

    @project_pipeline(
        settings,
        "_tune" if tune else "",
        "Tuning pipeline" if tune else "Regression pipeline",
        "Prepare the data, sweep the regressors' hyperparameters on the validation split, refit the best on the whole "
        "train split, evaluate it against a baseline, register it if better."
        if tune
        else "Prepare the data, train a regressor, evaluate it against a baseline, register it if better.",
    )
    @taking(inputs)
    def regression_pipeline(**inputs: Any) -> dict[str, Any]:
        data_prep = components["data_prep"](
            input_data=inputs["input_data"],
            validation_size=inputs["validation_size"],
            **{name: inputs[name] for name in split_inputs()},
        )
        prepped_data = data_prep.outputs.prepped_data
        training = {name: inputs[name] for name in [*hyperparameters, "random_seed"]}
        outputs: dict[str, Any] = {}
        if candidates:
            trained = [
                candidate_model(components["train"], candidate, prepped_data, training, sweep, settings.regressors)
                for candidate in candidates
            ]
            # select's ports are generic: it names each candidate by the model type its model was trained as.
            select = components["select"](
                prepped_data=prepped_data, **{f"candidate_{number}": model for number, model in enumerate(trained, 1)}
            )
            refit = components["train"](
                prepped_data=prepped_data, selection=select.outputs.selection, random_seed=inputs["random_seed"]
            )
            refit.name = "refit"
            model, outputs["selection"] = refit.outputs.model, select.outputs.selection
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

    return regression_pipeline(input_data=data, **parameters)


def local_pipeline(settings: Settings, overrides: dict[str, Any] | None = None, tune: bool = False) -> PipelineJob:
    """The pipeline on the CSV behind the data asset, for the local runner; with ``tune``, the tuning pipeline."""
    return build_pipeline(settings, rows(settings.local_data_path), overrides, tune)


def azure_pipeline(settings: Settings, overrides: dict[str, Any] | None = None, tune: bool = False) -> PipelineJob:
    """The pipeline on the registered data asset, for Azure ML; with ``tune``, the tuning pipeline."""
    return build_pipeline(settings, rows(settings.data_asset_uri), overrides, tune)


def load_score_component(components_dir: Path = COMPONENTS_DIR) -> CommandComponent:
    return load_component(components_dir / "score" / "score.yml")


def encoded_id_column(settings: Settings) -> str | None:
    """config.yml's scoring.id_column as the score step takes it: a column name, base64-encoded JSON, as data_prep's."""
    id_column = settings.setting("scoring", "id_column")
    return None if id_column is None else encoded(str(id_column))


def score_pipeline(settings: Settings, model: Input, data: Input) -> PipelineJob:
    """The batch-scoring job: the MLflow model ``model`` predicts every row of the CSV ``data``."""
    score_component = load_score_component(settings.root / "components")

    @project_pipeline(
        settings,
        "_score",
        "Batch scoring",
        "Check the rows against the model's features, predict each one, write predictions.csv.",
    )
    def scoring_pipeline(
        model: Input(type="mlflow_model"),
        data: Input(type="uri_file"),
        id_column: Input(type="string", optional=True),
    ) -> dict[str, Any]:
        score = score_component(model=model, data=data, id_column=id_column)
        return {"predictions": score.outputs.predictions}

    return scoring_pipeline(model=model, data=data, id_column=encoded_id_column(settings))


def local_score_pipeline(settings: Settings, model: Path, data: Path) -> PipelineJob:
    """Scoring on this machine: the steps run in their component folders, so the paths are made absolute."""
    return score_pipeline(settings, model_input(model, settings), rows(data))


def azure_score_pipeline(settings: Settings, data: str, model: str | None = None) -> PipelineJob:
    """Scoring on Azure ML: ``data`` is a data asset (``azureml:<name>:<version>``) or a local CSV that azure-ai-ml
    uploads; ``model`` a registered model (``azureml:<name>@latest`` or ``:<version>``), by default the newest
    version of the one the training pipeline registers."""
    return score_pipeline(settings, model_input(model, settings), rows(data))


# --- monitoring ----------------------------------------------------------------------------------------------------

MONITORING_THRESHOLDS = ("psi", "p_value", "missing_rate_increase", "unseen_rate", "rmse_ratio")


def monitoring_thresholds(settings: Settings) -> dict[str, float]:
    """config.yml's monitoring.thresholds, one pipeline input each."""
    thresholds = settings.setting("monitoring", "thresholds")
    if not isinstance(thresholds, dict) or set(thresholds) != set(MONITORING_THRESHOLDS):
        found = ", ".join(thresholds) if isinstance(thresholds, dict) else repr(thresholds)
        raise SettingsError(
            f"{settings.root / 'config.yml'}: monitoring.thresholds must set exactly {', '.join(MONITORING_THRESHOLDS)}"
            f" (found: {found})"
        )
    return thresholds


def load_monitor_components(components_dir: Path = COMPONENTS_DIR) -> dict[str, CommandComponent]:
    """What the monitoring graph runs: the training pipeline's data_prep and evaluate, score, and monitor."""
    components = load_components(components_dir)
    return {
        "data_prep": components["data_prep"],
        "evaluate": components["evaluate"],
        "score": load_score_component(components_dir),
        "monitor": load_component(components_dir / "monitor" / "monitor.yml"),
    }


def monitor_pipeline(settings: Settings, model: Input, training_data: Input, batch: Input) -> PipelineJob:
    """The monitoring job: ``model`` on the CSV ``batch`` against the training data it came from.

    data_prep splits ``training_data`` as the training pipeline does (config.yml's target, features, test_size and
    seed), so the reference is the train split and evaluate gives the model's test metrics; score predicts the batch
    (and refuses rows the model cannot score); monitor compares, reports and fails past a threshold.
    """
    components = load_monitor_components(settings.root / "components")
    training = settings.pipeline_inputs_with(None)
    inputs = {
        "model": Input(type="mlflow_model"),
        "training_data": Input(type="uri_file"),
        "batch": Input(type="uri_file"),
        **split_inputs(),
        "id_column": Input(type="string", optional=True),
        **dict.fromkeys(MONITORING_THRESHOLDS, float),
    }

    @project_pipeline(
        settings,
        "_monitor",
        "Model monitoring",
        "Drift of the features and predictions, missing and unseen values, and quality of a new batch.",
    )
    @taking(inputs)
    def monitoring_pipeline(**inputs: Any) -> dict[str, Any]:
        model, batch = inputs["model"], inputs["batch"]
        data_prep = components["data_prep"](
            input_data=inputs["training_data"],
            validation_size=0.0,  # the reference is the whole train split
            **{name: inputs[name] for name in split_inputs()},
        )
        evaluate = components["evaluate"](model=model, prepped_data=data_prep.outputs.prepped_data)
        score = components["score"](model=model, data=batch, id_column=inputs["id_column"])
        monitor = components["monitor"](
            model=model,
            prepped_data=data_prep.outputs.prepped_data,
            test_report=evaluate.outputs.report,
            batch=batch,
            predictions=score.outputs.predictions,
            **{name: inputs[name] for name in MONITORING_THRESHOLDS},
        )
        return {"report": monitor.outputs.report, "predictions": score.outputs.predictions}

    return monitoring_pipeline(
        model=model,
        training_data=training_data,
        batch=batch,
        **{name: training[name] for name in split_inputs()},
        id_column=encoded_id_column(settings),
        **monitoring_thresholds(settings),
    )


def local_monitor_pipeline(settings: Settings, model: Path, batch: Path) -> PipelineJob:
    """Monitoring on this machine, against the project's CSV; the paths are made absolute for the steps."""
    return monitor_pipeline(settings, model_input(model, settings), rows(settings.local_data_path), rows(batch))


def azure_monitor_pipeline(settings: Settings, batch: str | None = None, model: str | None = None) -> PipelineJob:
    """Monitoring on Azure ML, against the registered data asset: ``batch`` (default: config.yml's
    monitoring.batch_path) is a datastore path, a data asset or a local CSV that azure-ai-ml uploads; ``model``
    a registered model, by default the newest version of the one the training pipeline registers."""
    batch = batch or settings.setting("monitoring", "batch_path")
    job = monitor_pipeline(settings, model_input(model, settings), rows(settings.data_asset_uri), rows(batch))
    # A datastore path keeps its name while new rows replace its content, and a schedule resolves the model when it
    # is created: Azure ML must run every step anew rather than reuse an earlier run's outputs.
    job.settings.force_rerun = True
    return job


def checked_graphs(settings: Settings) -> dict[str, PipelineJob]:
    """Every graph ``check`` verifies, as the local runner builds them: training, tuning (its sweep nodes), and
    monitoring (which holds the scoring step too). No model is needed to check the wiring: any folder that exists
    stands in for one. Without validation rows (validation_size 0) there is no tuning graph: `tune` says so itself,
    and a project that never tunes still runs; nor with tuning settings tuning cannot use: check names them."""
    tunable = settings.setting("validation_size") and not tuning_findings(settings)
    tuning = {"tuning": local_pipeline(settings, tune=True)} if tunable else {}
    return {
        "training": local_pipeline(settings),
        **tuning,
        "monitoring": local_monitor_pipeline(settings, settings.root / "components", settings.local_data_path),
    }
