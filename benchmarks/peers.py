"""The render's local run beside its peers: the same training work, with MLflow tracking, side by side in one run.

Every system below does the work of the render's training pipeline with ``model=ridge``, on the render's own CSV
(``data/diabetes.csv``) and settings (config.yml's target, features, split, seed, alpha, min_r2): data_prep (drop
rows without a target, split), train (the preprocessing + Ridge pipeline), evaluate (test metrics against the
mean-predictor baseline, the predicted-vs-actual plot) and register (a new registry version when it beats the best
one), each logging to an MLflow store of its own (SQLite) as the render's steps do:

- **script**: one hand-written Python script (the yardstick): a run per pipeline, a nested run per step, the same
  parameters, metrics, plot and model (``mlflow.sklearn.save_model``, skops) as the render's steps;
- **Kedro + kedro-mlflow**: a Kedro project, ``kedro run``: a node per step, the data in the catalog (CSV, Parquet),
  the model, metrics and plot logged through kedro-mlflow's datasets, parameters by its hook;
- **ZenML**: a ZenML pipeline, a step per step, tracked by ZenML's MLflow experiment tracker (a nested run per
  step); twice: every step again (``enable_cache=False``) and nothing changed (its cache); a row when it installs;
- **render**: ``aml-pipeline-kit run --local`` in the render: every step again (``--no-reuse``), nothing changed,
  and ``components/evaluate/evaluate.py`` edited (a comment appended, so evaluate and register run again).

The peers' code is generated into the work folder (``build/peers/`` by default, made anew) from the strings below;
the steps' data work is one module, ``regression_steps.py``, which every peer calls, so they differ only in how
they run and track it. The peers run in venvs of their own (``make benchmark-peers`` makes them under
``build/venvs/`` from ``benchmarks/peers-kedro.txt`` and ``benchmarks/peers-zenml.txt``, with the render lock's
MLflow and scikit-learn); the script and the render run in the interpreter that runs this file. The versions are
printed, and a peer whose MLflow or scikit-learn differs from the render's lock is refused.

Each command runs ``--rounds`` times, interleaved (round after round, each round in a rotated order, after one
untimed warm-up run of each), under ``local_run.py``'s measuring wrapper: wall clock, and CPU time (user + system)
of the whole process tree. Printed: medians, their ratios to the hand-written script's, the steps that ran and the
test RMSE (equal for every system on the same data: the work is the same).

Then the data changes (the CSV cut to its first ``--cut-rows`` rows) and each system runs once more as a user
would, with whatever it keeps from earlier runs: printed are the steps that ran, the test RMSE before and after,
and whether it equals the hand-written script's on the cut data. The render's reuse is keyed on the content its
steps read; ZenML's cache key is a step's code and inputs, and the CSV is read by a path that did not change: the
table shows what each system then serves.

Usage (a stable interface: other work measures the engine with it)::

    make benchmark-peers                                          # makes the venvs, then runs this: --rounds 5
    make benchmark-peers ROUNDS=1 SUMMARY_JSON=build/peers.json   # a quick look; the figures in a file too
    .venv/bin/python benchmarks/peers.py --rounds 3               # the script and the render alone, no venvs
    .venv/bin/python benchmarks/peers.py --kedro build/venvs/kedro/bin/python --zenml build/venvs/zenml/bin/python

A peer without ``--kedro`` / ``--zenml`` (or whose venv did not install) is left out with a line saying so.
``--summary-json`` writes what the tables print, one object per row: {"versions": {system: {package: version}},
"rows": [{"system", "case", "wall_seconds", "cpu_seconds", "wall_ratio", "cpu_ratio", "steps_run" (fewest and most
over the rounds), "test_rmse", "same_metrics"}], "data_changed": [{"system", "case", "steps_run", "rmse_before",
"rmse_after", "changed", "right"}]}; the render's cases are "every step (--no-reuse)", "nothing changed" and
"evaluate.py edited".

Other sessions' work on the machine sways the wall clock; the load average is printed at the start and the end,
and the CPU time hardly sways. Exits non-zero if rendering, a set-up step or a measured command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from local_run import (
    DATA_FILE,
    RUN_COMPLETED,
    TEMPLATE_DIR,
    BenchmarkError,
    Measurement,
    load_average,
    measure,
    render,
    say,
    table,
    tail,
)

STEPS = ("data_prep", "train", "evaluate", "register")
EDITED_SCRIPT = Path("components") / "evaluate" / "evaluate.py"
SAME_AS_RENDER = ("mlflow", "scikit-learn")  # a peer with other versions of these measures other work
VERSIONS_SHOWN = ("mlflow", "scikit-learn", "pandas", "numpy", "kedro", "kedro-mlflow", "zenml")
RENDER_LOCK = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "requirements.lock"
# Nothing leaves the machine and nothing is written into HOME: the peers' telemetry off, ZenML's config in the work
# folder.
QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "KEDRO_DISABLE_TELEMETRY": "true",
    "ZENML_ANALYTICS_OPT_IN": "false",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "AUTO_OPEN_DASHBOARD": "false",
}
COMPARED_METRICS, METRICS_TOLERANCE = ("rmse", "mae", "r2"), 1e-9
KEDRO_COMPLETED = re.compile(r"Completed (\d+) out of (\d+) tasks")

# The steps' data work, as the render's step scripts do it for model=ridge (same cleaning, split, pipeline, metrics
# and plot); each peer runs and tracks these functions its own way. Settings come from settings.json.
REGRESSION_STEPS = '''\
"""The render's training steps (model=ridge) as plain functions; each peer runs and tracks them its own way."""

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (the backend is chosen first)

SETTINGS = json.loads((Path(__file__).parent / "settings.json").read_text())
TARGET, NUMERIC, CATEGORICAL = SETTINGS["target"], SETTINGS["numeric"], SETTINGS["categorical"]
MODEL_PARAMETERS = {"model_type": "ridge", "alpha": SETTINGS["alpha"]}


def prepare(frame):
    """data_prep: rows with a target, the configured features, a seeded test split. Returns (train, test)."""
    frame = frame.assign(**{TARGET: pd.to_numeric(frame[TARGET])}).dropna(subset=[TARGET])
    frame = frame.assign(**{name: frame[name].map(str, na_action="ignore") for name in CATEGORICAL})
    frame = frame[[*NUMERIC, *CATEGORICAL, TARGET]].astype(dict.fromkeys(CATEGORICAL, "category"))
    test = frame.sample(frac=SETTINGS["test_size"], random_state=SETTINGS["seed"])
    return frame.drop(index=test.index), test


def fit(train):
    """train: the preprocessing + Ridge pipeline fitted on the train split. Returns (model, parameters, train RMSE)."""
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=30, sparse_output=False),
                ),
                CATEGORICAL,
            ),
        ]
    )
    model = Pipeline([("preprocess", preprocess), ("regressor", Ridge(alpha=SETTINGS["alpha"]))])
    rows, target = train[NUMERIC + CATEGORICAL], train[TARGET]
    model.fit(rows, target)
    parameters = {**MODEL_PARAMETERS, "n_train_rows": len(rows), "n_features": rows.shape[1]}
    return model, parameters, float(root_mean_squared_error(target, model.predict(rows)))


def model_requirements():
    """What the saved model needs to load, as installed here (MLflow would infer them at a cost of seconds)."""
    return [f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}", f"pandas=={pd.__version__}"]


def trusted_types(model):
    """The types skops must be told to trust to load ``model`` back."""
    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


def scores(actual, predicted, prefix):
    return {
        f"{prefix}rmse": float(root_mean_squared_error(actual, predicted)),
        f"{prefix}mae": float(mean_absolute_error(actual, predicted)),
        f"{prefix}r2": float(r2_score(actual, predicted)),
    }


def evaluate(model, train, test):
    """evaluate: test metrics of the model and of the mean-predictor baseline. Returns (metrics, plot figure)."""
    predicted = np.asarray(model.predict(test[NUMERIC + CATEGORICAL]), dtype=float)
    baseline = np.full(len(test), train[TARGET].mean())
    metrics = {
        **scores(test[TARGET], predicted, ""),
        **scores(test[TARGET], baseline, "baseline_"),
        "n_train_rows": len(train),
        "n_test_rows": len(test),
    }
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(test[TARGET], predicted, s=10, alpha=0.6)
    low, high = float(min(test[TARGET].min(), predicted.min())), float(max(test[TARGET].max(), predicted.max()))
    axes.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect prediction")
    axes.set(xlabel=f"actual {TARGET}", ylabel=f"predicted {TARGET}", title="Test split: predicted vs. actual")
    axes.legend()
    figure.tight_layout()
    return metrics, figure


def register_if_better(client, metrics, register):
    """register: ``register()`` (a new version, returned) when the model beats the baseline, reaches min_r2 and
    beats the best registered version's test RMSE (tagged test_rmse on each version). Returns (version, reason)."""
    name, rmse = SETTINGS["model_name"], metrics["rmse"]
    versions = client.search_model_versions(f"name = '{name}'")
    best = min((float(version.tags["test_rmse"]) for version in versions if "test_rmse" in version.tags), default=None)
    if rmse >= metrics["baseline_rmse"]:
        return None, f"test RMSE {rmse:.4f} does not beat the baseline's {metrics['baseline_rmse']:.4f}"
    if metrics["r2"] < SETTINGS["min_r2"]:
        return None, f"test R2 {metrics['r2']:.4f} is below min_r2={SETTINGS['min_r2']}"
    if best is not None and rmse >= best:
        return None, f"test RMSE {rmse:.4f} does not beat the best registered version's {best:.4f}"
    version = register()
    client.set_model_version_tag(name, version, "test_rmse", str(rmse))
    return version, f"test RMSE {rmse:.4f} beats the baseline and every registered version"
'''

HAND_WRITTEN_SCRIPT = '''\
"""The render's training pipeline (model=ridge) by hand, in one process: a run for the pipeline, a nested run per
step, logging what the render's steps log. Prints the steps it ran and the test metrics as JSON."""

import json
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow import MlflowClient

import regression_steps as steps

SETTINGS = steps.SETTINGS
mlflow.set_tracking_uri("sqlite:///mlruns.db")
mlflow.set_experiment(SETTINGS["experiment"])
ran = []
with mlflow.start_run(run_name="pipeline", tags={"runner": "script"}) as pipeline:
    mlflow.log_params({name: SETTINGS[name] for name in SETTINGS["pipeline_inputs"]})
    with mlflow.start_run(run_name="data_prep", nested=True):
        train, test = steps.prepare(pd.read_csv(SETTINGS["data"]))
        ran.append("data_prep")
    model_dir = Path("models") / pipeline.info.run_id
    with mlflow.start_run(run_name="train", nested=True):
        model, parameters, train_rmse = steps.fit(train)
        mlflow.log_params(parameters)
        mlflow.set_tag("refit", "false")
        mlflow.log_metric("train_rmse", train_rmse)
        mlflow.sklearn.save_model(
            model,
            model_dir,
            pip_requirements=steps.model_requirements(),
            skops_trusted_types=steps.trusted_types(model),
            metadata={"model_type": "ridge"},
        )
        ran.append("train")
    with mlflow.start_run(run_name="evaluate", nested=True):
        metrics, figure = steps.evaluate(model, train, test)
        mlflow.log_metrics(metrics)
        mlflow.log_figure(figure, "predicted_vs_actual.png")
        ran.append("evaluate")
    with mlflow.start_run(run_name="register", nested=True) as run:
        client = MlflowClient()
        name = SETTINGS["model_name"]

        def register():
            if not client.search_registered_models(f"name = '{name}'"):
                client.create_registered_model(name)
            source = model_dir.resolve().as_uri()
            return client.create_model_version(name, source, tags={"source_run_id": run.info.run_id}).version

        version, reason = steps.register_if_better(client, metrics, register)
        mlflow.set_tags({"registered": str(version is not None), "decision": reason})
        ran.append("register")
print(json.dumps({"ran": ran, "metrics": metrics}))
'''

KEDRO_PYPROJECT = """\
[project]
name = "peer-kedro"
version = "0.1.0"
requires-python = ">=3.11"

[tool.kedro]
package_name = "peer_kedro"
project_name = "peer-kedro"
kedro_init_version = "{kedro_version}"
source_dir = "src"
"""

KEDRO_PIPELINE_REGISTRY = '''\
"""The render's training pipeline (model=ridge) as Kedro nodes; kedro-mlflow's hook opens the run and logs the
parameters, its datasets (conf/base/catalog.yml) log the model, metrics and plot."""

import mlflow
from kedro.pipeline import Pipeline, node, pipeline

import regression_steps as steps


def data_prep(diabetes):
    return steps.prepare(diabetes)


def train(train_rows):
    model, parameters, train_rmse = steps.fit(train_rows)
    mlflow.log_params(parameters)
    mlflow.set_tag("refit", "false")
    return model, {"train_rmse": {"value": train_rmse, "step": 0}}


def evaluate(model, train_rows, test_rows):
    metrics, figure = steps.evaluate(model, train_rows, test_rows)
    return {name: {"value": value, "step": 0} for name, value in metrics.items()}, figure


def register(test_metrics):
    run_id = mlflow.active_run().info.run_id
    # kedro-mlflow names a dataset's metrics after it: test_metrics.rmse
    metrics = {name.removeprefix("test_metrics."): metric["value"] for name, metric in test_metrics.items()}

    def new_version():
        return mlflow.register_model(f"runs:/{run_id}/model", steps.SETTINGS["model_name"]).version

    version, reason = steps.register_if_better(mlflow.MlflowClient(), metrics, new_version)
    mlflow.set_tags({"registered": str(version is not None), "decision": reason})


def register_pipelines() -> dict[str, Pipeline]:
    training = pipeline(
        [
            node(data_prep, "diabetes", ["train_rows", "test_rows"], name="data_prep"),
            node(train, "train_rows", ["model", "train_metrics"], name="train"),
            node(
                evaluate, ["model", "train_rows", "test_rows"], ["test_metrics", "predicted_vs_actual"], name="evaluate"
            ),
            node(register, "test_metrics", None, name="register"),
        ]
    )
    return {"__default__": training}
'''

KEDRO_CATALOG = """\
diabetes:
  type: pandas.CSVDataset
  filepath: data/01_raw/diabetes.csv
train_rows:
  type: pandas.ParquetDataset
  filepath: data/05_model_input/train.parquet
test_rows:
  type: pandas.ParquetDataset
  filepath: data/05_model_input/test.parquet
model:
  type: kedro_mlflow.io.models.MlflowModelTrackingDataset
  flavor: mlflow.sklearn
  save_args:
    name: model
    pip_requirements: {requirements}
    skops_trusted_types: {trusted_types}
train_metrics:
  type: kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset
test_metrics:
  type: kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset
predicted_vs_actual:
  type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
  dataset:
    type: matplotlib.MatplotlibDataset
    filepath: data/08_reporting/predicted_vs_actual.png
"""

KEDRO_MLFLOW = """\
server:
  mlflow_tracking_uri: sqlite:///mlruns.db
tracking:
  experiment:
    name: {experiment}
"""

ZENML_PIPELINE = '''\
"""The render's training pipeline (model=ridge) as a ZenML pipeline; ZenML's MLflow experiment tracker opens a run
per pipeline and a nested run per step. ``--no-cache``: every step runs. Prints the steps that ran, the steps
served from the cache and the test metrics (the evaluate step's output) as JSON."""

import sys
from typing import Annotated

import json
import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.pipeline import Pipeline
from zenml import pipeline, step
from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerSettings

import regression_steps as steps

TRACKED = {
    "experiment_tracker": "mlflow_tracker",
    "settings": {"experiment_tracker": MLFlowExperimentTrackerSettings(nested=True)},
}


@step(**TRACKED)
def data_prep(data: str) -> tuple[Annotated[pd.DataFrame, "train_rows"], Annotated[pd.DataFrame, "test_rows"]]:
    train_rows, test_rows = steps.prepare(pd.read_csv(data))
    return train_rows, test_rows  # ZenML reads the outputs' count from a tuple written out here


@step(**TRACKED)
def train(train_rows: pd.DataFrame) -> tuple[Annotated[Pipeline, "model"], Annotated[str, "model_uri"]]:
    model, parameters, train_rmse = steps.fit(train_rows)
    mlflow.log_params(parameters)
    mlflow.set_tag("refit", "false")
    mlflow.log_metric("train_rmse", train_rmse)
    logged = mlflow.sklearn.log_model(
        model,
        name="model",
        pip_requirements=steps.model_requirements(),
        skops_trusted_types=steps.trusted_types(model),
    )
    return model, logged.model_uri


@step(**TRACKED)
def evaluate(model: Pipeline, train_rows: pd.DataFrame, test_rows: pd.DataFrame) -> dict[str, float]:
    metrics, figure = steps.evaluate(model, train_rows, test_rows)
    mlflow.log_metrics(metrics)
    mlflow.log_figure(figure, "predicted_vs_actual.png")
    return metrics


@step(**TRACKED)
def register(model_uri: str, metrics: dict[str, float]) -> None:
    def new_version():
        return mlflow.register_model(model_uri, steps.SETTINGS["model_name"]).version

    version, reason = steps.register_if_better(mlflow.MlflowClient(), metrics, new_version)
    mlflow.set_tags({"registered": str(version is not None), "decision": reason})


@pipeline(name=steps.SETTINGS["experiment"])
def training(data: str) -> None:
    train_rows, test_rows = data_prep(data)
    model, model_uri = train(train_rows)
    register(model_uri, evaluate(model, train_rows, test_rows))


if __name__ == "__main__":
    run = training.with_options(enable_cache="--no-cache" not in sys.argv)(data=steps.SETTINGS["data"])
    statuses = {name: str(getattr(step_run.status, "value", step_run.status)) for name, step_run in run.steps.items()}
    print(
        json.dumps(
            {
                "ran": [name for name, status in statuses.items() if status == "completed"],
                "cached": [name for name, status in statuses.items() if status == "cached"],
                "metrics": run.steps["evaluate"].output.load(),
            }
        )
    )
'''


@dataclass
class Outcome:
    """What one run did: the steps that ran (not reused, not served from a cache), and the test metrics it shows."""

    ran: list[str]
    metrics: dict[str, float]


@dataclass
class Case:
    """One command of one system, measured round after round."""

    system: str
    label: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    outcome: Callable[[Measurement], Outcome]
    data: Path  # the CSV the system reads: cut for the data-change case
    prepare: Callable[[int], None] = lambda number: None
    runs: list[Measurement] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    everyday: bool = False  # the command a user runs day to day, with what the system keeps: the data changes under it

    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    def cpu_seconds(self) -> float:
        return statistics.median(run.cpu_seconds for run in self.runs)


@dataclass
class Settings:
    """What every system is given: the render's config.yml settings, as settings.json."""

    values: dict[str, object]
    data: Path

    def write(self, folder: Path, data: Path) -> None:
        """settings.json and regression_steps.py in ``folder``, the data read from ``data``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "settings.json").write_text(json.dumps({**self.values, "data": str(data)}, indent=2))
        (folder / "regression_steps.py").write_text(REGRESSION_STEPS)


def read_settings(project: Path) -> Settings:
    config = yaml.safe_load((project / "config.yml").read_text())
    if config["model"]["type"] != "ridge":
        raise BenchmarkError(f"{project}: the peers train ridge, config.yml has model type {config['model']['type']!r}")
    values = {
        "target": config["target_column"],
        "numeric": config["features"]["numeric"],
        "categorical": config["features"]["categorical"],
        "test_size": config["test_size"],
        "seed": config["random_seed"],
        "alpha": config["model"]["alpha"],
        "min_r2": config["registration"]["min_r2"],
        "model_name": config["azure"]["registered_model_name"],
        "experiment": config["azure"]["experiment_name"],
    }
    values["pipeline_inputs"] = list(values)
    return Settings(values, project / DATA_FILE)


def run_untimed(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchmarkError(f"set-up failed: {' '.join(argv)} (cwd {cwd})\n{tail(done.stdout + done.stderr)}")


def printed_outcome(measurement: Measurement) -> Outcome:
    """The outcome a generated script prints as JSON, last."""
    printed = json.loads(measurement.output.strip().splitlines()[-1])
    return Outcome(printed["ran"], printed["metrics"])


def copy_data(settings: Settings, destination: Path) -> Path:
    destination.parent.mkdir(parents=True)
    shutil.copy(settings.data, destination)
    return destination


def write_one_file_peer(folder: Path, settings: Settings, entry: str, code: str) -> Path:
    """A peer that is one Python file, ``entry`` holding ``code``, beside the settings and the CSV in ``folder``;
    returns the CSV it reads."""
    data = copy_data(settings, folder / DATA_FILE)
    settings.write(folder, data)
    (folder / entry).write_text(code)
    return data


def write_script(folder: Path, settings: Settings) -> Path:
    """The hand-written script's files in ``folder``; returns the CSV it reads."""
    return write_one_file_peer(folder, settings, "pipeline.py", HAND_WRITTEN_SCRIPT)


def hand_written_script(folder: Path, settings: Settings, python: Path, env: dict[str, str]) -> list[Case]:
    """The yardstick: one script, in the interpreter that runs the render."""
    data = write_script(folder, settings)
    argv = [str(python), "pipeline.py"]
    return [Case("script", "every step", argv, folder, env, printed_outcome, data, everyday=True)]


def write_kedro_project(folder: Path, settings: Settings, python: Path, kedro_version: str) -> Path:
    """The Kedro project's files in ``folder`` (``python`` fits the model once for what the catalog states of it);
    returns the CSV it reads."""
    data = copy_data(settings, folder / "data" / "01_raw" / DATA_FILE.name)
    package = folder / "src" / "peer_kedro"
    package.mkdir(parents=True)
    settings.write(package.parent, data)  # regression_steps.py beside the package: Kedro puts src/ on the path
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text("")
    (package / "pipeline_registry.py").write_text(KEDRO_PIPELINE_REGISTRY)
    (folder / "pyproject.toml").write_text(KEDRO_PYPROJECT.format(kedro_version=kedro_version))
    for environment in ("base", "local"):
        (folder / "conf" / environment).mkdir(parents=True)
    requirements, trusted = model_details(python, package.parent)
    (folder / "conf" / "base" / "catalog.yml").write_text(
        KEDRO_CATALOG.format(requirements=requirements, trusted_types=trusted)
    )
    (folder / "conf" / "base" / "mlflow.yml").write_text(KEDRO_MLFLOW.format(experiment=settings.values["experiment"]))
    (folder / "conf" / "base" / "parameters.yml").write_text(
        yaml.safe_dump({name: settings.values[name] for name in settings.values["pipeline_inputs"]})
    )
    return data


def kedro_project(folder: Path, settings: Settings, python: Path, env: dict[str, str]) -> list[Case]:
    """A Kedro project run by ``kedro run``; kedro-mlflow tracks it. Kedro keeps nothing between runs: every node
    runs every time."""
    data = write_kedro_project(folder, settings, python, installed_versions(python)["kedro"])
    store = folder / "mlruns.db"

    def outcome(measurement: Measurement) -> Outcome:
        completed = KEDRO_COMPLETED.findall(measurement.output)
        ran = list(STEPS) if completed and completed[-1][0] == completed[-1][1] else []
        logged = latest_metrics(store, settings.values["experiment"])
        return Outcome(ran, {name.removeprefix("test_metrics."): value for name, value in logged.items()})

    argv = [str(python.parent / "kedro"), "run"]
    return [Case("Kedro + kedro-mlflow", "every step", argv, folder, env, outcome, data, everyday=True)]


def model_details(python: Path, steps_folder: Path) -> tuple[str, str]:
    """The model's requirements and skops' trusted types, as regression_steps gives them for the model it fits, in
    YAML flow style: the catalog states what the script and ZenML compute when they save the model."""
    code = (
        "import json, pandas as pd, regression_steps as s; m = s.fit(s.prepare(pd.read_csv(s.SETTINGS['data']))[0])[0];"
        " print(json.dumps([s.model_requirements(), s.trusted_types(m)]))"
    )
    done = subprocess.run([str(python), "-c", code], cwd=steps_folder, capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchmarkError(f"cannot fit the model in {python}:\n{tail(done.stderr)}")
    requirements, trusted = json.loads(done.stdout)
    return json.dumps(requirements), json.dumps(trusted)


def latest_metrics(store: Path, experiment: str) -> dict[str, float]:
    """The test metrics of the newest run of ``experiment`` in the MLflow store ``store`` (read after the run)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    return dict(runs[0].data.metrics) if runs else {}


def write_zenml_project(folder: Path, settings: Settings) -> Path:
    """The ZenML pipeline's files in ``folder``; returns the CSV it reads."""
    return write_one_file_peer(folder, settings, "run.py", ZENML_PIPELINE)


def zenml_project(folder: Path, settings: Settings, python: Path, env: dict[str, str]) -> list[Case]:
    """A ZenML pipeline on its default local stack with an MLflow experiment tracker, its config in ``folder``."""
    data = write_zenml_project(folder, settings)
    env = {**env, "ZENML_CONFIG_PATH": str(folder / ".zenconfig")}
    zenml = str(python.parent / "zenml")
    tracker = ["experiment-tracker", "register", "mlflow_tracker", "--flavor=mlflow"]
    for argv in (
        [zenml, "init"],
        [zenml, *tracker, f"--tracking_uri=sqlite:///{folder / 'mlruns.db'}"],
        [zenml, "stack", "register", "peers", "-o", "default", "-a", "default", "-e", "mlflow_tracker", "--set"],
    ):
        run_untimed(argv, folder, env)
    run, cached = [str(python), "run.py", "--no-cache"], "nothing changed (its cache)"
    return [
        Case("ZenML", "every step", run, folder, env, printed_outcome, data),
        Case("ZenML", cached, run[:-1], folder, env, printed_outcome, data, everyday=True),
    ]


def render_project(folder: Path, settings: Settings, python: Path, env: dict[str, str]) -> list[Case]:
    """The render, model=ridge, through the engine's command line: every step again, nothing changed, one step's
    script edited."""
    project = settings.data.parent.parent
    command = [str(python.parent / "aml-pipeline-kit"), "run", "--local"]

    def outcome(measurement: Measurement) -> Outcome:
        completed = RUN_COMPLETED.search(measurement.output)
        if completed is None:
            raise BenchmarkError(f"the render's run printed no 'run ... completed' line:\n{tail(measurement.output)}")
        summary = json.loads((Path(completed[2].strip()) / "run.json").read_text())
        ran = [step["name"] for step in summary["steps"] if step["reused_from"] is None]
        metrics = json.loads((Path(summary["outputs"]["report"]) / "metrics.json").read_text())
        return Outcome(ran, metrics)

    def edit(number: int) -> None:
        with (project / EDITED_SCRIPT).open("a") as script:
            script.write(f"# benchmark edit {number}\n")

    data = project / DATA_FILE
    return [
        Case("render", "every step (--no-reuse)", [*command, "--no-reuse"], project, env, outcome, data),
        Case("render", "nothing changed", command, project, env, outcome, data, everyday=True),
        Case("render", f"{EDITED_SCRIPT.name} edited", command, project, env, outcome, data, prepare=edit),
    ]


def installed_versions(python: Path) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m\n"
        f"names = {list(VERSIONS_SHOWN)!r}\n"
        "found = {}\n"
        "for name in names:\n"
        "    try:\n"
        "        found[name] = m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(found))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchmarkError(f"{python} cannot report its packages:\n{tail(done.stderr)}")
    return json.loads(done.stdout)


def locked_versions() -> dict[str, str]:
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", RENDER_LOCK.read_text(), re.MULTILINE))
    return {name: pins[name] for name in SAME_AS_RENDER}


def peer_python(option: Path | None, package: str, name: str) -> tuple[Path | None, dict[str, str]]:
    """The interpreter of a peer and its versions, or None with a line saying why it is not measured."""
    if option is None:
        say(f"  {name}: not measured (no interpreter given)")
        return None, {}
    option = option.absolute()  # not resolved: a venv's python is a link out of the venv
    if not option.is_file():
        say(f"  {name}: not measured: {option} does not exist (its venv did not install; `make` said why above)")
        return None, {}
    versions = installed_versions(option)
    if package not in versions:
        say(f"  {name}: not measured: {option} has no {package} (its install failed; `make` said why above)")
        return None, {}
    if {key: versions.get(key) for key in SAME_AS_RENDER} != locked_versions():
        raise BenchmarkError(f"{name} in {option} has {versions}, not the render lock's {locked_versions()}")
    return option, versions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kedro", type=Path, help="python of a venv with Kedro and kedro-mlflow")
    parser.add_argument("--zenml", type=Path, help="python of a venv with ZenML (left out if not given or missing)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of every command; medians count")
    parser.add_argument("--cut-rows", type=int, default=399, help="rows the CSV keeps in the data-change case")
    parser.add_argument("--workdir", type=Path, default=TEMPLATE_DIR / "build" / "peers", help="made anew")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a single command is killed")
    parser.add_argument("--summary-json", type=Path, help="also write the tables there as JSON (see above)")
    return parser


def measured(case: Case, number: int, timeout: float) -> tuple[Measurement, Outcome]:
    """``case`` prepared for round ``number`` and run under the measuring wrapper: its figures and outcome."""
    case.prepare(number)
    measurement = measure(case.argv, case.cwd, case.env, Path(sys.executable), timeout)
    return measurement, case.outcome(measurement)


def rounds(cases: list[Case], args: argparse.Namespace) -> None:
    """A warm-up run of each case, then ``--rounds`` rounds, each case once per round, the order rotated."""
    say("  warm-up: each command once, untimed")
    for case in cases:
        measured(case, 0, args.timeout)
    for number in range(1, args.rounds + 1):
        say(f"  round {number}/{args.rounds}, load avg {load_average()}")
        shift = (number - 1) % len(cases)
        for case in cases[shift:] + cases[:shift]:
            last, outcome = measured(case, number, args.timeout)
            case.runs.append(last)
            case.outcomes.append(outcome)
            say(
                f"    {case.system}, {case.label}: {last.seconds:6.2f} s, {last.cpu_seconds:6.2f} s CPU, "
                f"ran {len(outcome.ran)}/{len(STEPS)}"
            )


def rmse_of(outcome: Outcome) -> float | None:
    return outcome.metrics.get("rmse")


def rmse_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def same_metrics(outcomes: list[Outcome], reference: Outcome) -> bool:
    return all(
        abs(outcome.metrics.get(name, float("nan")) - reference.metrics[name]) <= METRICS_TOLERANCE
        for outcome in outcomes
        for name in COMPARED_METRICS
    )


def summary(cases: list[Case]) -> list[dict[str, object]]:
    """A row per case: medians, ratios to the hand-written script (the first case), the steps that ran (fewest and
    most over the rounds), and whether every round's test metrics equal the script's."""
    yardstick = cases[0]
    return [
        {
            "system": case.system,
            "case": case.label,
            "wall_seconds": case.seconds(),
            "cpu_seconds": case.cpu_seconds(),
            "wall_ratio": case.seconds() / yardstick.seconds(),
            "cpu_ratio": case.cpu_seconds() / yardstick.cpu_seconds(),
            "steps_run": [min(len(o.ran) for o in case.outcomes), max(len(o.ran) for o in case.outcomes)],
            "test_rmse": rmse_of(case.outcomes[-1]),
            "same_metrics": same_metrics(case.outcomes, yardstick.outcomes[-1]),
        }
        for case in cases
    ]


def summary_table(rows: list[dict[str, object]]) -> str:
    def steps_cell(fewest: int, most: int) -> str:
        return f"{fewest}/{len(STEPS)}" if fewest == most else f"{fewest}-{most}/{len(STEPS)}"

    header = ["system", "case", "wall s", "CPU s", "wall ratio", "CPU ratio", "steps run", "test RMSE", "same metrics"]
    cells = [
        [
            row["system"],
            row["case"],
            *(f"{row[name]:.2f}" for name in ("wall_seconds", "cpu_seconds", "wall_ratio", "cpu_ratio")),
            steps_cell(*row["steps_run"]),
            rmse_cell(row["test_rmse"]),
            "yes" if row["same_metrics"] else "NO",
        ]
        for row in rows
    ]
    return table(header, cells)


def data_changed(cases: list[Case], args: argparse.Namespace) -> list[dict[str, object]]:
    """Each system's everyday command once more after its CSV is cut to ``--cut-rows`` rows: what ran, and whether
    the metrics it shows changed and equal the hand-written script's, which computes everything afresh."""
    rows, truth = [], None
    for case in (case for case in cases if case.everyday):
        before = case.outcomes[-1]
        lines = case.data.read_text().splitlines(keepends=True)
        case.data.write_text("".join(lines[: args.cut_rows + 1]))
        _, after = measured(case, 0, args.timeout)
        truth = truth or after  # the hand-written script's, the first case
        rows.append(
            {
                "system": case.system,
                "case": case.label,
                "steps_run": after.ran,
                "rmse_before": rmse_of(before),
                "rmse_after": rmse_of(after),
                "changed": not same_metrics([after], before),
                "right": same_metrics([after], truth),
            }
        )
        say(f"  {case.system}, {case.label}, CSV cut to {args.cut_rows} rows: ran {', '.join(after.ran) or 'nothing'}")
    return rows


def data_changed_table(rows: list[dict[str, object]]) -> str:
    header = ["system", "case", "steps run after the cut", "RMSE before", "RMSE after", "changed", "right (= script)"]
    cells = [
        [
            row["system"],
            row["case"],
            ", ".join(row["steps_run"]) or "none",
            rmse_cell(row["rmse_before"]),
            rmse_cell(row["rmse_after"]),
            "yes" if row["changed"] else "no",
            "yes" if row["right"] else "NO (stale)",
        ]
        for row in rows
    ]
    return table(header, cells)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    python = Path(sys.executable)
    args.workdir = args.workdir.absolute()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    env = {**os.environ, **QUIET}
    try:
        say("The render's local run beside its peers: the same training work with MLflow tracking, one run")
        say(f"  machine:   {os.cpu_count()} CPUs, {platform.platform()}; load avg {load_average()} at start")
        say(f"  work dir:  {args.workdir}")
        say(f"  rounds:    {args.rounds}, interleaved (medians reported), after one warm-up run of each command")
        render_versions = installed_versions(python)
        say(f"  script and render: {python}: {render_versions}")
        kedro, kedro_versions = peer_python(args.kedro, "kedro", "Kedro + kedro-mlflow")
        zenml, zenml_versions = peer_python(args.zenml, "zenml", "ZenML")
        for name, versions in (("Kedro + kedro-mlflow", kedro_versions), ("ZenML", zenml_versions)):
            if versions:
                say(f"  {name}: {versions}")
        project = render(TEMPLATE_DIR, python, args.workdir / "render", "model=ridge")
        settings = read_settings(project)
        say(f"  data:      {settings.data} ({len(settings.data.read_text().splitlines()) - 1} rows)")
        cases = hand_written_script(args.workdir / "script", settings, python, env)
        if kedro:
            cases += kedro_project(args.workdir / "kedro", settings, kedro, env)
        if zenml:
            cases += zenml_project(args.workdir / "zenml", settings, zenml, env)
        cases += render_project(args.workdir / "render", settings, python, env)
        say()
        started = time.perf_counter()
        rounds(cases, args)
        measured_rows = summary(cases)
        say(f"\n== Median of {args.rounds} interleaved rounds; ratios to the hand-written script with MLflow ==")
        say(summary_table(measured_rows))
        say(f"\n== The data changes: the CSV cut to its first {args.cut_rows} rows, each system run once more ==")
        changed_rows = data_changed(cases, args)
        say(data_changed_table(changed_rows))
        if args.summary_json:
            versions = {"script and render": render_versions, "Kedro + kedro-mlflow": kedro_versions}
            record = {"versions": {**versions, "ZenML": zenml_versions}, "rows": measured_rows}
            args.summary_json.write_text(json.dumps({**record, "data_changed": changed_rows}, indent=2))
        say(f"\n{time.perf_counter() - started:.0f} s measuring; load avg {load_average()} at the end")
    except BenchmarkError as error:
        say(f"\nERROR: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
