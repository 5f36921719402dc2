"""Monitor the model on a new batch of rows: drift of every feature and of the predictions against the training
data, missing-value and unseen-category rates, and, when the batch has the target, RMSE/MAE/R² against the
model's test metrics.

Writes ``report.json`` and ``drift.png`` (the features' PSI against the threshold) and logs both to MLflow.
When a threshold is crossed it prints one line naming what crossed which threshold and exits 1, so that the step,
and the pipeline job on Azure ML, fails: a failed scheduled job is the alert. The report stays in the step's
MLflow run either way. Column names come from features.json and the CSV, never from the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from argument_types import ranged
from drift import ColumnDrift, Thresholds, categorical_drift, numeric_drift
from mlflow.models import Model
from score import ScoringError, batch_files, read_rows
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # the backend is chosen first

PREDICTION = "prediction"
CHARTED_COLUMNS = 40  # the largest shifts; a wider table is in report.json
MIN_QUALITY_ROWS = 2  # R² needs two rows with a target
SHARE = ranged(float, 0.0, 1.0)  # the spec's min and max of a share
NON_NEGATIVE = ranged(float, 0.0)


class MonitoringError(ValueError):
    """The inputs cannot be compared; the message names the file and what is wrong."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="Folder of the MLflow model.")
    parser.add_argument("--prepped-data", type=Path, required=True, help="Output of data_prep: the training data.")
    parser.add_argument("--test-report", type=Path, required=True, help="Output of evaluate: metrics.json.")
    parser.add_argument("--batch", type=Path, required=True, help="The new rows: a file or a folder; target optional.")
    parser.add_argument("--predictions", type=Path, required=True, help="Output of score on the batch.")
    parser.add_argument("--psi", type=NON_NEGATIVE, required=True, help="PSI of a large shift.")
    parser.add_argument("--p-value", type=SHARE, required=True, help="p-value below which it is no chance.")
    parser.add_argument("--missing-rate-increase", type=SHARE, required=True, help="Largest rise in missing share.")
    parser.add_argument("--unseen-rate", type=SHARE, required=True, help="Largest share of unseen categories.")
    parser.add_argument("--rmse-ratio", type=NON_NEGATIVE, required=True, help="Largest batch RMSE / test RMSE.")
    parser.add_argument("--report", type=Path, required=True, help="Output folder for report.json and drift.png.")
    return parser


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise MonitoringError(f"{path}: cannot be read as JSON ({error})") from None


def training_features(model_dir: Path, prepped_data: Path) -> dict:
    """The features the model was trained on; the training data must still give the same ones."""
    features = (Model.load(str(model_dir)).metadata or {}).get("features")
    if not features:
        raise MonitoringError(f"{model_dir}: the MLmodel file lists no features; monitor a model saved by train")
    current = read_json(prepped_data / "features.json")
    for kind in ("target", "numeric", "categorical"):
        if features[kind] != current[kind]:
            raise MonitoringError(
                f"the model's {kind} columns {features[kind]} differ from the training data's now, "
                f"{current[kind]}: train a model on this data first (`make run`)"
            )
    return features


def read_batch(path: Path, features: dict) -> pd.DataFrame:
    """The batch's rows: a CSV or Parquet file, or every such file of a folder (an MLTable's included), as score
    reads them."""
    try:
        batch = pd.concat([read_rows(file) for file in batch_files(path)], ignore_index=True)
    except ScoringError as error:
        raise MonitoringError(str(error)) from None
    missing = [name for name in [*features["numeric"], *features["categorical"]] if name not in batch.columns]
    if missing:
        raise MonitoringError(f"{path.name}: missing feature columns {missing}")
    return batch


def batch_predictions(folder: Path, rows: int) -> pd.DataFrame:
    """Score's predictions of the batch, one CSV per mini-batch: with the batch's target, when it has one."""
    files = sorted(folder.glob("*.csv"))
    predictions = pd.concat([pd.read_csv(file) for file in files], ignore_index=True) if files else pd.DataFrame()
    if len(predictions) != rows:
        raise MonitoringError(f"{folder}: {len(predictions)} predictions for {rows} batch rows")
    return predictions


def quality(predictions: pd.DataFrame, target: str, test: dict, ratio: float) -> dict | None:
    """RMSE, MAE and R² on the batch rows that have a target (score carries it beside each prediction), beside the
    model's test metrics; None without one."""
    if target not in predictions.columns:
        return None
    actual = pd.to_numeric(predictions[target], errors="coerce")
    predicted = predictions[f"predicted_{target}"]
    if (text := int((actual.isna() & predictions[target].notna()).sum())) > 0:
        raise MonitoringError(f"target column {target!r} of the batch holds {text} non-numeric value(s)")
    known = actual.notna().to_numpy()
    if known.sum() < MIN_QUALITY_ROWS:
        return None
    actual, predicted = actual[known], predicted[known]
    rmse = float(root_mean_squared_error(actual, predicted))
    return {
        "rows": int(known.sum()),
        "rmse": rmse,
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": float(r2_score(actual, predicted)),
        **{f"test_{name}": float(test[name]) for name in ("rmse", "mae", "r2")},
        "rmse_ratio": rmse / test["rmse"] if test["rmse"] else float("inf"),
        "degraded": rmse > ratio * test["rmse"],
    }


def percent(share: float) -> str:
    return format(share, ".0%")


def alerts(columns: list[ColumnDrift], prediction: ColumnDrift, scores: dict | None, limits: Thresholds) -> list[str]:
    """One phrase per crossed threshold, naming the columns."""
    found = []

    def named(selected: list[ColumnDrift]) -> str:
        return ", ".join(repr(column.name) for column in selected)

    if drifted := [column for column in columns if column.drifted]:
        found.append(f"drift in {named(drifted)} (PSI >= {limits.psi} and p < {limits.p_value})")
    if prediction.drifted:
        found.append(f"prediction drift (PSI {prediction.psi:.3f} >= {limits.psi}, p {prediction.p_value:.2g})")
    if missing := [column for column in columns if column.missing_rate_increased]:
        found.append(f"missing values up by more than {percent(limits.missing_rate_increase)} in {named(missing)}")
    if unseen := [column for column in columns if column.unseen_too_many]:
        found.append(f"unseen categories above {percent(limits.unseen_rate)} of the rows in {named(unseen)}")
    if scores and scores["degraded"]:
        found.append(f"batch RMSE {scores['rmse']:.3f} above {limits.rmse_ratio} x test RMSE {scores['test_rmse']:.3f}")
    return found


def table(columns: list[ColumnDrift], prediction: ColumnDrift, scores: dict | None) -> str:
    def number(value: float | None, form: str) -> str:
        return "-" if value is None else format(value, form)

    lines = [f"{'column':<28}{'type':<12}{'PSI':>8}{'test':>6}{'p-value':>10}{'missing':>16}{'unseen':>8}  drift"]
    for column in [*columns, prediction]:
        missing = f"{percent(column.missing_rate_reference)}->{percent(column.missing_rate_batch)}"
        shown = column.name if len(column.name) <= 26 else column.name[:25] + "…"
        lines.append(
            f"{shown:<28}{column.kind:<12}{number(column.psi, '.3f'):>8}{column.test:>6}"
            f"{number(column.p_value, '.2g'):>10}{missing:>16}{number(column.unseen_rate, '.0%'):>8}"
            f"  {'DRIFT' if column.drifted else ''}"
        )
    if scores:
        lines.append(f"\n{'metric':<8}{'batch':>10}{'test':>10}   ({scores['rows']} batch rows with a target)")
        lines += [
            f"{label:<8}{scores[key]:>10.3f}{scores['test_' + key]:>10.3f}"
            for label, key in (("RMSE", "rmse"), ("MAE", "mae"), ("R²", "r2"))
        ]
    return "\n".join(lines)


def chart(columns: list[ColumnDrift], prediction: ColumnDrift, limits: Thresholds, path: Path) -> None:
    """A bar per column, its PSI, red when the column drifted; the threshold as a dashed line."""
    shown = sorted([c for c in [*columns, prediction] if c.psi is not None], key=lambda c: c.psi or 0.0)
    shown = shown[-CHARTED_COLUMNS:]
    figure, axes = plt.subplots(figsize=(7, 1.5 + 0.32 * len(shown)))
    colours = ["tab:red" if column.drifted else "tab:blue" for column in shown]
    labels = [column.name if column.kind != PREDICTION else "(predictions)" for column in shown]
    axes.barh(range(len(shown)), [column.psi for column in shown], color=colours)
    axes.set_yticks(range(len(shown)), [label if len(label) <= 30 else label[:29] + "…" for label in labels])
    axes.axvline(limits.psi, color="grey", linestyle="--", label=f"threshold {limits.psi}")
    drifted = sum(column.drifted for column in columns)
    axes.set(xlabel="population stability index (batch vs. training data)")
    axes.set_title(f"{drifted} of {len(columns)} features drifted (red: PSI >= {limits.psi} and p < {limits.p_value})")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def monitor(args: argparse.Namespace, limits: Thresholds) -> tuple[dict, list[ColumnDrift], ColumnDrift]:
    features = training_features(args.model, args.prepped_data)
    reference = pd.read_parquet(args.prepped_data / "train.parquet")
    batch = read_batch(args.batch, features)
    predictions = batch_predictions(args.predictions, len(batch))
    predicted = predictions[f"predicted_{features['target']}"]
    columns = [numeric_drift(name, reference[name], batch[name], limits) for name in features["numeric"]]
    columns += [categorical_drift(name, reference[name], batch[name], limits) for name in features["categorical"]]
    model = mlflow.pyfunc.load_model(str(args.model), suppress_warnings=True)  # not its serving packages: not here
    # data_prep stored the splits typed as the model was trained on them: they are predicted as they are read.
    reference_predicted = model.predict(reference[[*features["numeric"], *features["categorical"]]])
    reference_predictions = pd.Series(np.asarray(reference_predicted, dtype=float))
    prediction = numeric_drift(PREDICTION, reference_predictions, predicted, limits, kind=PREDICTION)
    test_metrics = read_json(args.test_report / "metrics.json")
    scores = quality(predictions, features["target"], test_metrics, limits.rmse_ratio)
    found = alerts(columns, prediction, scores, limits)
    report = {
        "rows": {"training": len(reference), "batch": len(batch)},
        "thresholds": vars(limits),
        "columns": [column.as_json() for column in columns],
        "prediction": prediction.as_json(),
        "quality": scores,
        "drifted_features": [column.name for column in columns if column.drifted],
        "alerts": found,
    }
    return report, columns, prediction


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limits = Thresholds(args.psi, args.p_value, args.missing_rate_increase, args.unseen_rate, args.rmse_ratio)
    try:
        report, columns, prediction = monitor(args, limits)
    except MonitoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.report.mkdir(parents=True, exist_ok=True)
    (args.report / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    chart(columns, prediction, limits, args.report / "drift.png")
    metrics = {
        "drifted_features": len(report["drifted_features"]),
        "max_feature_psi": max((column.psi or 0.0 for column in columns), default=0.0),
        "prediction_psi": prediction.psi or 0.0,
        "alerts": len(report["alerts"]),
        **{f"batch_{key}": report["quality"][key] for key in ("rmse", "mae", "r2") if report["quality"]},
    }
    with mlflow.start_run():
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(args.report), artifact_path="monitoring")
        logged = mlflow.get_artifact_uri("monitoring")
    print(table(columns, prediction, report["quality"]))
    print(f"\nreport and chart logged to MLflow: {logged}")
    if report["alerts"]:
        print(f"error: monitoring thresholds crossed: {'; '.join(report['alerts'])}", file=sys.stderr)
        return 1
    print("no threshold crossed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
