"""A test fixture of the local runner: a sweep trial whose loss, (x - 2)^2 * scale, it logs to MLflow."""

import argparse
import json
from pathlib import Path

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=int, required=True)
parser.add_argument("--scale", type=float, required=True)
parser.add_argument("--use-offset", choices=["True", "False"], required=True)  # as Azure ML writes booleans
parser.add_argument("--fail-for", type=int)
parser.add_argument("--model", type=Path, required=True)
args = parser.parse_args()
if args.x == args.fail_for:
    raise SystemExit(f"x = {args.x}: this trial fails, as asked")
if Path("model.json").exists():  # each trial runs in a fresh copy of the code, as on Azure ML
    raise SystemExit("model.json exists: another trial ran in this folder")
Path("model.json").write_text("{}")
loss = (args.x - 2) ** 2 * args.scale
mlflow.log_metric("loss", loss)
(args.model / "model.json").write_text(json.dumps({"x": args.x, "scale": args.scale, "loss": loss}))
