"""The entry script of tests/data/pipelines/parallel.yml: Azure ML's init()/run() contract, with what the tests
steer through program_arguments: a file whose name holds --fail-on fails run() on every try, one holding
--flaky-on fails its first try only (a marker file in --state says it was tried), one holding --slow-on sleeps past
the timeout, one holding --drop-on is scored without a row (a failed item, as Azure ML counts it). In a pipeline's
step, run() logs each mini-batch's rows into the step's MLflow run."""

import argparse
import os
import time
from pathlib import Path

import pandas as pd

args: argparse.Namespace
TRACKED = bool(os.environ.get("MLFLOW_RUN_ID"))  # run as a pipeline's step: log into its MLflow run, as on Azure ML


def init() -> None:
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-on", default="none")
    parser.add_argument("--flaky-on", default="none")
    parser.add_argument("--slow-on", default="none")
    parser.add_argument("--drop-on", default="none")
    parser.add_argument("--state", required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    args, _ = parser.parse_known_args()  # Azure ML's sys.argv holds its own arguments too
    Path(args.state, f"init-{os.getpid()}").touch()
    if TRACKED:  # the store's first contact costs seconds: here, not under run()'s timeout
        import mlflow

        mlflow.log_metric("workers_started", 1)


def run(mini_batch: list[str]) -> pd.DataFrame:
    names = [Path(path).name for path in mini_batch]
    Path(args.state, f"run-{os.getpid()}-{names[0]}").touch()
    if any(args.fail_on in name for name in names):
        raise ValueError(f"cannot score {names}")
    flaky = Path(args.state, "flaky-tried")
    if any(args.flaky_on in name for name in names) and not flaky.exists():
        flaky.touch()
        raise RuntimeError("a transient failure")
    if any(args.slow_on in name for name in names) and not Path(args.state, "slow-tried").exists():
        Path(args.state, "slow-tried").touch()
        time.sleep(60)
    kept = [path for path in mini_batch if args.drop_on not in Path(path).name]
    frame = pd.concat([pd.read_csv(path).assign(file=Path(path).name) for path in kept]) if kept else pd.DataFrame()
    if TRACKED:
        import mlflow

        mlflow.log_metric("mini_batch_rows", len(frame))
    return frame.assign(score=frame["x"] * args.scale) if kept else frame
