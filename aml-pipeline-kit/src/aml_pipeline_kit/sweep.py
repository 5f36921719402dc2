"""Sweep trials, run locally: which values each trial gets, and which trial wins.

A sweep node runs its trial component once per set of sampled values; its outputs are the best successful
trial's, by the metric the trials log to MLflow. ``trial_values`` samples a search space written as Azure ML
sends it (``["uniform", [0.5, 0.9]]``, ``["choice", [["rbf", "linear"]]]``: what azure-ai-ml's search-space
objects give from ``_to_rest_object()``), the same whichever pipeline asks. Run as a script (the last step of a
local sweep), this file picks the winner and copies its outputs; it imports nothing of its package, as the step
host runs it as ``python sweep.py ...`` in a folder of its own.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

SAMPLING = ("random", "grid", "bayesian")
DEFAULT_SEED = 0  # a sweep without a seed samples the same trials run after run: a local re-run is reused


class SweepError(ValueError):
    """A search space or a sweep setting the local runner cannot sample; the message names it."""


def expression(name: str, raw: Any) -> tuple[str, list[Any]]:
    if not (isinstance(raw, list | tuple) and len(raw) == 2 and isinstance(raw[1], list | tuple)):
        raise SweepError(f"search space {name!r}: {raw!r} is not a search-space expression such as ['uniform', [0, 1]]")
    return str(raw[0]).lower(), list(raw[1])


def sample(name: str, raw: Any, rng: random.Random) -> Any:
    """One value of a search-space expression, with hyperopt's meaning of each kind, as Azure ML samples it."""
    kind, arguments = expression(name, raw)
    draws = {
        "choice": lambda values: rng.choice(list(values)),
        "randint": lambda upper: rng.randrange(int(upper)),
        "uniform": rng.uniform,
        "loguniform": lambda low, high: math.exp(rng.uniform(low, high)),
        "normal": rng.gauss,
        "lognormal": lambda mu, sigma: math.exp(rng.gauss(mu, sigma)),
        "quniform": lambda low, high, q: round(rng.uniform(low, high) / q) * q,
        "qloguniform": lambda low, high, q: round(math.exp(rng.uniform(low, high)) / q) * q,
        "qnormal": lambda mu, sigma, q: round(rng.gauss(mu, sigma) / q) * q,
        "qlognormal": lambda mu, sigma, q: round(math.exp(rng.gauss(mu, sigma)) / q) * q,
    }
    if kind not in draws:
        raise SweepError(f"search space {name!r}: unknown kind {kind!r}; known: {', '.join(draws)}")
    try:
        return draws[kind](*arguments)
    except (TypeError, ValueError, IndexError) as error:
        raise SweepError(f"search space {name!r}: {raw!r} cannot be sampled ({error})") from None


def trial_values(
    search_space: dict[str, Any], sampling: str, max_trials: int | None, seed: int | None = None
) -> list[dict[str, Any]]:
    """The values of each trial: ``grid`` takes every combination of choices (in order, at most ``max_trials``),
    ``random`` draws ``max_trials`` sets; ``bayesian`` needs Azure ML's service, so it is drawn at random here
    (the caller says so)."""
    if sampling not in SAMPLING:
        raise SweepError(f"sampling algorithm {sampling!r} is unknown; known: {', '.join(SAMPLING)}")
    if sampling == "grid":
        choices = {}
        for name, raw in search_space.items():
            kind, arguments = expression(name, raw)
            if kind != "choice":
                raise SweepError(f"search space {name!r}: grid sampling takes choice only, not {kind}")
            choices[name] = list(arguments[0])
        grid = [dict(zip(choices, values, strict=True)) for values in itertools.product(*choices.values())]
        return grid[:max_trials] if max_trials else grid
    if not max_trials or max_trials < 1:
        raise SweepError("limits.max_total_trials must be set (at least 1) for random sampling")
    rng = random.Random(DEFAULT_SEED if seed is None else seed)
    return [{name: sample(name, raw, rng) for name, raw in search_space.items()} for _ in range(max_trials)]


def best_trial(metrics: dict[str, float | None], goal: str) -> str:
    """The trial with the best value of the objective; trials that logged none are out of the race."""
    scored = {trial: value for trial, value in metrics.items() if value is not None and math.isfinite(value)}
    if not scored:
        raise SweepError(f"no trial logged the objective metric (trials: {', '.join(metrics)})")
    if goal not in {"minimize", "maximize"}:
        raise SweepError(f"objective goal {goal!r} must be minimize or maximize")
    pick = min if goal == "minimize" else max
    return pick(scored, key=lambda trial: scored[trial])


def logged_metrics(metric: str, trials: list[str]) -> dict[str, float | None]:
    """Each trial's last value of ``metric``, from the MLflow runs of this pipeline run (this step's siblings)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    own = client.get_run(os.environ["MLFLOW_RUN_ID"])
    parent = own.data.tags.get("mlflow.parentRunId", "")
    siblings = client.search_runs(
        [own.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=10000
    )
    by_name = {run.info.run_name: run.data.metrics.get(metric) for run in siblings}
    return {trial: by_name.get(trial) for trial in trials}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="pick the best trial of a local sweep and copy its outputs")
    parser.add_argument("--metric", required=True)
    parser.add_argument("--goal", required=True, choices=["minimize", "maximize"])
    parser.add_argument("--output-names", nargs="*", default=[])
    parser.add_argument("--outputs", nargs="*", default=[], type=Path, help="this step's outputs, in name order")
    parser.add_argument("--trials", type=int, help="how many trials the sweep ran, failed ones included")
    parser.add_argument(
        "--trial", nargs="+", action="append", default=[], metavar="NAME OUTPUT", help="a successful trial, its outputs"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    trials = {name: [Path(output) for output in outputs] for name, *outputs in args.trial}
    ran = max(args.trials or 0, len(trials))
    if ran > len(trials):
        print(f"{ran - len(trials)} of {ran} trials failed: left out, as Azure ML leaves out failed trials")
    try:
        if not trials:
            raise SweepError(f"every trial failed ({ran} of {ran}): there is no best trial")
        metrics = logged_metrics(args.metric, list(trials))
        winner = best_trial(metrics, args.goal)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for trial, value in metrics.items():
        print(f"{trial:<40} {args.metric} = {value}{'  <- best' if trial == winner else ''}")
    for name, source, destination in zip(args.output_names, trials[winner], args.outputs, strict=True):
        shutil.copytree(source, destination, dirs_exist_ok=True)
        print(f"output {name}: {winner}'s {source}")
    import mlflow

    mlflow.log_params({"best_trial": winner})
    mlflow.log_metric(args.metric, metrics[winner])  # the sweep's objective, as Azure ML shows it on the sweep job
    return 0


if __name__ == "__main__":
    sys.exit(main())
