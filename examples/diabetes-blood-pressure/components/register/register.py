"""Register the model only when it is worth it; record the decision and the reason either way.

Registration goes through MLflow's model registry: on Azure ML that is the
workspace's registry, locally it is the project's MLflow store. The same code
decides in both places. It fails closed: when the registry cannot be searched or
written, nothing is registered and the step fails with one line saying why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ALREADY_EXISTS, RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient

METRIC_TAG = "test_rmse"
RUN_TAG = "source_run_id"  # the register step's run: a file:// version carries no run link of its own
# How a registry says a registered model's name exists: both, as MLflow's own register_model accepts them
# (mlflow/tracking/_model_registry/fluent.py); a registry that answers 409 gives ALREADY_EXISTS.
NAME_EXISTS = (ErrorCode.Name(RESOURCE_ALREADY_EXISTS), ErrorCode.Name(ALREADY_EXISTS))


class RegistryError(RuntimeError):
    """The registry could not be searched or written: nothing was registered."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="Folder of the MLflow model.")
    parser.add_argument("--report", type=Path, required=True, help="Output of evaluate (metrics.json).")
    parser.add_argument("--model-name", required=True, help="Name of the model in the registry.")
    parser.add_argument("--min-r2", type=float, default=0.0, help="Lowest test R² worth registering.")
    parser.add_argument("--decision", type=Path, required=True, help="Output folder for decision.json.")
    return parser


def decide(metrics: dict[str, float], min_r2: float, best_registered_rmse: float | None) -> tuple[bool, str]:
    """Whether to register, and why, from the test metrics and the best registered version's RMSE."""
    rmse, baseline = metrics["rmse"], metrics["baseline_rmse"]
    if rmse >= baseline:
        return False, f"test RMSE {rmse:.4f} does not beat the mean-predictor baseline's {baseline:.4f}"
    if metrics["r2"] < min_r2:
        return False, f"test R² {metrics['r2']:.4f} is below the threshold min_r2={min_r2}"
    if best_registered_rmse is not None and rmse >= best_registered_rmse:
        return False, f"test RMSE {rmse:.4f} does not beat the best registered version's {best_registered_rmse:.4f}"
    return True, f"test RMSE {rmse:.4f} beats the baseline's {baseline:.4f} and every registered version"


def best_registered_rmse(client: MlflowClient, name: str) -> float | None:
    """The lowest test RMSE among the registered versions of ``name``; None if it has none yet.

    A failed search raises: "no versions" would let any model past the gate.
    """
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception as error:  # whatever the client raises (REST, connection, auth), the gate cannot be passed
        raise RegistryError(f"cannot search the registered versions of {name!r}: {one_line(error)}") from error
    scores = [float(version.tags[METRIC_TAG]) for version in versions if METRIC_TAG in version.tags]
    return min(scores, default=None)


def register(client: MlflowClient, model: Path, name: str, rmse: float, run_id: str) -> str:
    """Register the model folder as a new version of ``name``; returns the version.

    ``mlflow.register_model("runs:/...")`` cannot be used on Azure ML with MLflow 3: it lists the run's
    artifacts to find ``MLmodel``, azureml-mlflow lists the run's top level instead, and MLflow falls back to
    the logged-models API, which Azure ML answers with 404 (Azure/azure-sdk-for-python#44896). The registry
    calls below make no logged-model request. A ``file://`` source is uploaded by azureml-mlflow to the
    workspace and registered from there, as Microsoft documents ("Create models from assets",
    https://learn.microsoft.com/azure/machine-learning/how-to-manage-models-mlflow) and as its own pipeline
    examples do since the MLflow 3 fix (Azure/azureml-examples#3687,
    cli/responsible-ai/cli-responsibleaidashboard-housing-classification/train.py). Locally the version
    points at the run's model folder.
    """
    try:
        try:
            client.create_registered_model(name)
        except MlflowException as error:
            if error.error_code not in NAME_EXISTS:
                raise
        version = client.create_model_version(name, source=model.resolve().as_uri(), tags={RUN_TAG: run_id})
        client.set_model_version_tag(name, version.version, METRIC_TAG, str(rmse))
    except Exception as error:  # any failure of the registry: the step must fail, not report success
        raise RegistryError(f"cannot register {model} as {name!r}: {one_line(error)}") from error
    return str(version.version)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics = json.loads((args.report / "metrics.json").read_text())
    try:
        with mlflow.start_run() as run:
            client = MlflowClient()
            best = best_registered_rmse(client, args.model_name)
            should_register, reason = decide(metrics, args.min_r2, best)
            version = (
                register(client, args.model, args.model_name, metrics["rmse"], run.info.run_id)
                if should_register
                else None
            )
            mlflow.set_tags({"registered": str(should_register), "decision": reason})
    except RegistryError as error:
        print(f"error: not registered: {error}", file=sys.stderr)
        return 1
    decision = {"registered": should_register, "reason": reason, "model_name": args.model_name, "version": version}
    args.decision.mkdir(parents=True, exist_ok=True)
    (args.decision / "decision.json").write_text(json.dumps(decision, indent=2))
    print(f"{'registered' if should_register else 'not registered'} {args.model_name}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
