"""Register the model only when it is worth it; record the decision and the reason either way.

Registration goes through MLflow's model registry: on Azure ML that is the
workspace's registry, locally it is the project's MLflow store. The same code
decides in both places.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

METRIC_TAG = "test_rmse"


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
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    scores = [float(version.tags[METRIC_TAG]) for version in versions if METRIC_TAG in version.tags]
    return min(scores, default=None)


def register(model: Path, name: str, rmse: float) -> str:
    """Upload the model into this step's run and register it from there; returns the new version."""
    mlflow.log_artifacts(str(model), artifact_path="model")
    version = mlflow.register_model(f"runs:/{mlflow.active_run().info.run_id}/model", name)
    MlflowClient().set_model_version_tag(name, version.version, METRIC_TAG, str(rmse))
    return str(version.version)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics = json.loads((args.report / "metrics.json").read_text())
    with mlflow.start_run():
        best = best_registered_rmse(MlflowClient(), args.model_name)
        should_register, reason = decide(metrics, args.min_r2, best)
        version = register(args.model, args.model_name, metrics["rmse"]) if should_register else None
        mlflow.set_tags({"registered": str(should_register), "decision": reason})
    decision = {"registered": should_register, "reason": reason, "model_name": args.model_name, "version": version}
    args.decision.mkdir(parents=True, exist_ok=True)
    (args.decision / "decision.json").write_text(json.dumps(decision, indent=2))
    print(f"{'registered' if should_register else 'not registered'} {args.model_name}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
